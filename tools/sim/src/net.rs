//! The simulated network: messages in flight, their delivery times, and the
//! links a partition has cut.
//!
//! It only holds and hands out messages; every decision (which one to
//! deliver, drop, duplicate or delay) is made by the simulator with its
//! seeded `Rng`, so the network itself is deterministic and has no clock of
//! its own beyond the `now` it is given.

use std::collections::BTreeSet;

use corelog::raftpb::Message;

/// At most this many messages are in flight: a full network loses new
/// messages, as a full socket buffer would, instead of growing without
/// bound when a partition stops deliveries.
pub const MAX_IN_FLIGHT: usize = 4096;

#[derive(Debug, Clone)]
pub struct InFlight {
    /// Send order, so that FIFO delivery is well defined.
    pub seq: u64,
    /// The tick before which the message may not be delivered.
    pub deliver_at: u64,
    pub msg: Message,
}

#[derive(Debug, Default)]
pub struct Net {
    /// In send order (`seq` increasing), except for duplicates, which are
    /// appended at the end.
    queue: Vec<InFlight>,
    next_seq: u64,
    /// Directed links that deliver nothing: (from, to).
    pub cut: BTreeSet<(u64, u64)>,
}

impl Net {
    pub fn new() -> Net {
        Net::default()
    }

    /// Queues a message; false (and the message is lost) if the network is
    /// full.
    pub fn send(&mut self, msg: Message, deliver_at: u64) -> bool {
        if self.queue.len() >= MAX_IN_FLIGHT {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(InFlight {
            seq,
            deliver_at,
            msg,
        });
        true
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Positions of the messages deliverable at `now`.
    pub fn deliverable(&self, now: u64) -> Vec<usize> {
        self.queue
            .iter()
            .enumerate()
            .filter(|(_, f)| f.deliver_at <= now)
            .map(|(i, _)| i)
            .collect()
    }

    /// The position of the oldest message deliverable at `now`.
    pub fn first_deliverable(&self, now: u64) -> Option<usize> {
        self.queue.iter().position(|f| f.deliver_at <= now)
    }

    /// The position of the oldest message on link `(from, to)` deliverable
    /// at `now`.
    pub fn first_deliverable_on(&self, now: u64, link: (u64, u64)) -> Option<usize> {
        self.queue
            .iter()
            .position(|f| f.deliver_at <= now && (f.msg.from, f.msg.to) == link)
    }

    /// Removes and returns the message at `pos` (from `deliverable`).
    pub fn take(&mut self, pos: usize) -> InFlight {
        // `remove`, not `swap_remove`: the queue's order is the FIFO order.
        self.queue.remove(pos)
    }

    pub fn get(&self, pos: usize) -> &InFlight {
        &self.queue[pos]
    }

    pub fn get_mut(&mut self, pos: usize) -> &mut InFlight {
        &mut self.queue[pos]
    }

    /// Whether a message from `from` to `to` gets through the partitions.
    pub fn link_up(&self, from: u64, to: u64) -> bool {
        !self.cut.contains(&(from, to))
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Cuts both directions between every node of `a` and every node of
    /// `b`.
    pub fn cut_between(&mut self, a: &[u64], b: &[u64]) {
        for &x in a {
            for &y in b {
                if x != y {
                    self.cut.insert((x, y));
                    self.cut.insert((y, x));
                }
            }
        }
    }

    /// Cuts the one direction `from -> to`: `to` no longer hears `from`.
    pub fn cut_one_way(&mut self, from: u64, to: u64) {
        if from != to {
            self.cut.insert((from, to));
        }
    }

    /// The earliest delivery time of any message, if any: lets a calm phase
    /// know whether waiting will deliver more.
    pub fn next_delivery_time(&self) -> Option<u64> {
        self.queue.iter().map(|f| f.deliver_at).min()
    }

    /// Re-queues a copy of the message at `pos`, delivered no earlier than
    /// `deliver_at`. Returns false if the network is full.
    pub fn duplicate(&mut self, pos: usize, deliver_at: u64) -> bool {
        let msg = self.queue[pos].msg.clone();
        self.send(msg, deliver_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(from: u64, to: u64) -> Message {
        Message {
            from,
            to,
            ..Default::default()
        }
    }

    #[test]
    fn fifo_among_deliverable_and_delays_respected() {
        let mut n = Net::new();
        assert!(n.send(msg(1, 2), 5));
        assert!(n.send(msg(1, 3), 0));
        assert_eq!(n.first_deliverable(0), Some(1));
        assert_eq!(n.deliverable(5), vec![0, 1]);
        assert_eq!(n.take(0).msg.to, 2);
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn partitions_cut_directed_links() {
        let mut n = Net::new();
        n.cut_one_way(1, 2);
        assert!(!n.link_up(1, 2));
        assert!(n.link_up(2, 1));
        n.cut_between(&[1], &[3, 4]);
        assert!(!n.link_up(3, 1) && !n.link_up(1, 4));
        n.heal();
        assert!(n.link_up(1, 2));
    }

    #[test]
    fn a_full_network_loses_new_messages() {
        let mut n = Net::new();
        for _ in 0..MAX_IN_FLIGHT {
            assert!(n.send(msg(1, 2), 0));
        }
        assert!(!n.send(msg(1, 2), 0));
        assert_eq!(n.len(), MAX_IN_FLIGHT);
    }
}
