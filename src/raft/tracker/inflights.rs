//! The inflight window of one follower: the MsgApp messages sent to it and
//! not yet acknowledged, bounded both by count and by total bytes. It is a
//! ring buffer that grows on demand up to its count limit, so that a process
//! with thousands of groups does not preallocate thousands of full windows.
//! It never decides what to send; it only answers whether there is room.

/// One unacknowledged MsgApp: the index of its last entry and the total
/// payload size of its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Inflight {
    index: u64,
    bytes: u64,
}

/// A bounded window of unacknowledged appends.
///
/// The byte bound is soft: one message may take the total from below
/// `max_bytes` to at or above it, after which the window is full. A
/// `max_bytes` of 0 means no byte bound. A `size` of 0 means the window is
/// always full (`Default` is that: `Inflights::new(0, 0)`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inflights {
    /// Position in `buffer` of the oldest inflight message.
    start: usize,
    /// Number of inflight messages.
    count: usize,
    /// Total bytes of the inflight messages.
    bytes: u64,
    /// The most messages allowed in flight.
    size: usize,
    /// The most bytes allowed in flight (soft, 0 = unbounded).
    max_bytes: u64,
    /// The ring; grows by doubling up to `size`.
    buffer: Vec<Inflight>,
}

impl Inflights {
    /// A window of at most `size` messages and (softly) `max_bytes` bytes.
    pub fn new(size: usize, max_bytes: u64) -> Inflights {
        Inflights {
            size,
            max_bytes,
            ..Inflights::default()
        }
    }

    /// Records a message whose last entry is `index`, carrying `bytes` of
    /// payload. Indexes must be added in increasing order.
    ///
    /// # Panics
    /// If the window is full: callers must check `full()` first.
    pub fn add(&mut self, index: u64, bytes: u64) {
        assert!(
            !self.full(),
            "Inflights::add on a full window: callers must check full() first"
        );
        let mut next = self.start + self.count;
        if next >= self.size {
            next -= self.size;
        }
        if next >= self.buffer.len() {
            self.grow();
        }
        self.buffer[next] = Inflight { index, bytes };
        self.count += 1;
        self.bytes += bytes;
    }

    /// Doubles the ring (at least 1, at most `size`), keeping positions: the
    /// ring only wraps once it has reached `size`, so a copy suffices.
    fn grow(&mut self) {
        let new_len = match self.buffer.len() * 2 {
            0 => 1,
            n => n.min(self.size),
        };
        self.buffer.resize(new_len, Inflight::default());
    }

    /// Releases every message whose last index is at most `to`.
    pub fn free_le(&mut self, to: u64) {
        if self.count == 0 || to < self.buffer[self.start].index {
            // Everything inflight is newer than `to`.
            return;
        }
        let mut idx = self.start;
        let mut freed = 0;
        let mut bytes = 0;
        while freed < self.count {
            let f = self.buffer[idx];
            if to < f.index {
                break;
            }
            bytes += f.bytes;
            freed += 1;
            idx += 1;
            if idx >= self.size {
                idx -= self.size;
            }
        }
        self.count -= freed;
        self.bytes -= bytes;
        self.start = idx;
        if self.count == 0 {
            // Restart at the front so an idle window does not wander around
            // the ring and force it to grow.
            self.start = 0;
        }
    }

    /// Whether no more messages may be sent: the count bound is reached, or
    /// the byte bound (if any) is reached or exceeded.
    pub fn full(&self) -> bool {
        self.count == self.size || (self.max_bytes != 0 && self.bytes >= self.max_bytes)
    }

    /// The number of inflight messages.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The total payload bytes inflight.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Forgets every inflight message (the buffer is kept for reuse).
    pub fn reset(&mut self) {
        self.start = 0;
        self.count = 0;
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `Inflights` with a preallocated ring, to check its exact layout.
    fn with_ring(start: usize, size: usize) -> Inflights {
        Inflights {
            start,
            size,
            buffer: vec![Inflight::default(); size],
            ..Inflights::default()
        }
    }

    fn ring(indexes: &[u64], bytes: &[u64]) -> Vec<Inflight> {
        assert_eq!(indexes.len(), bytes.len());
        indexes
            .iter()
            .zip(bytes)
            .map(|(&index, &bytes)| Inflight { index, bytes })
            .collect()
    }

    fn expect(
        start: usize,
        count: usize,
        bytes: u64,
        size: usize,
        buffer: Vec<Inflight>,
    ) -> Inflights {
        Inflights {
            start,
            count,
            bytes,
            size,
            max_bytes: 0,
            buffer,
        }
    }

    #[test]
    fn add_fills_the_ring_in_order_without_wrapping() {
        let mut inf = with_ring(0, 10);
        for i in 0..5 {
            inf.add(i, 100 + i);
        }
        let want = expect(
            0,
            5,
            510,
            10,
            ring(
                &[0, 1, 2, 3, 4, 0, 0, 0, 0, 0],
                &[100, 101, 102, 103, 104, 0, 0, 0, 0, 0],
            ),
        );
        assert_eq!(inf, want);

        for i in 5..10 {
            inf.add(i, 100 + i);
        }
        let want = expect(
            0,
            10,
            1045,
            10,
            ring(
                &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
                &[100, 101, 102, 103, 104, 105, 106, 107, 108, 109],
            ),
        );
        assert_eq!(inf, want);
    }

    #[test]
    fn add_wraps_around_the_ring() {
        let mut inf = with_ring(5, 10);
        for i in 0..5 {
            inf.add(i, 100 + i);
        }
        let want = expect(
            5,
            5,
            510,
            10,
            ring(
                &[0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
                &[0, 0, 0, 0, 0, 100, 101, 102, 103, 104],
            ),
        );
        assert_eq!(inf, want);

        for i in 5..10 {
            inf.add(i, 100 + i);
        }
        let want = expect(
            5,
            10,
            1045,
            10,
            ring(
                &[5, 6, 7, 8, 9, 0, 1, 2, 3, 4],
                &[105, 106, 107, 108, 109, 100, 101, 102, 103, 104],
            ),
        );
        assert_eq!(inf, want);
    }

    #[test]
    fn free_le_releases_a_prefix_and_wraps() {
        let mut inf = Inflights::new(10, 0);
        for i in 0..10 {
            inf.add(i, 100 + i);
        }
        let full_ring = || {
            ring(
                &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
                &[100, 101, 102, 103, 104, 105, 106, 107, 108, 109],
            )
        };

        inf.free_le(0);
        assert_eq!(inf, expect(1, 9, 945, 10, full_ring()));

        inf.free_le(4);
        assert_eq!(inf, expect(5, 5, 535, 10, full_ring()));

        inf.free_le(8);
        assert_eq!(inf, expect(9, 1, 109, 10, full_ring()));

        for i in 10..15 {
            inf.add(i, 100 + i);
        }
        inf.free_le(12);
        let wrapped = || {
            ring(
                &[10, 11, 12, 13, 14, 5, 6, 7, 8, 9],
                &[110, 111, 112, 113, 114, 105, 106, 107, 108, 109],
            )
        };
        assert_eq!(inf, expect(3, 2, 227, 10, wrapped()));

        // Emptying the window moves start back to the front.
        inf.free_le(14);
        assert_eq!(inf, expect(0, 0, 0, 10, wrapped()));
    }

    #[test]
    fn free_le_below_the_window_is_a_no_op() {
        let mut inf = Inflights::new(4, 0);
        inf.add(5, 1);
        inf.add(6, 1);
        inf.free_le(4);
        assert_eq!(inf.count(), 2);
        assert_eq!(inf.bytes(), 2);
    }

    #[test]
    fn full_by_count_and_by_bytes() {
        struct Case {
            name: &'static str,
            size: usize,
            max_bytes: u64,
            full_at: u64,
            free_le: u64,
            again_at: u64,
        }
        let cases = [
            Case {
                name: "always-full",
                size: 0,
                max_bytes: 0,
                full_at: 0,
                free_le: 0,
                again_at: 0,
            },
            Case {
                name: "single-entry",
                size: 1,
                max_bytes: 0,
                full_at: 1,
                free_le: 1,
                again_at: 2,
            },
            Case {
                name: "single-entry-overflow",
                size: 1,
                max_bytes: 10,
                full_at: 1,
                free_le: 1,
                again_at: 2,
            },
            Case {
                name: "multi-entry",
                size: 15,
                max_bytes: 0,
                full_at: 15,
                free_le: 6,
                again_at: 22,
            },
            Case {
                name: "slight-overflow",
                size: 8,
                max_bytes: 400,
                full_at: 4,
                free_le: 2,
                again_at: 7,
            },
            Case {
                name: "exact-max-bytes",
                size: 8,
                max_bytes: 406,
                full_at: 4,
                free_le: 3,
                again_at: 8,
            },
            Case {
                name: "larger-overflow",
                size: 15,
                max_bytes: 408,
                full_at: 5,
                free_le: 1,
                again_at: 6,
            },
        ];
        for c in cases {
            let mut inf = Inflights::new(c.size, c.max_bytes);
            let add_until_full = |inf: &mut Inflights, begin: u64, end: u64| {
                for i in begin..end {
                    assert!(!inf.full(), "{}: full at {i}, want {end}", c.name);
                    inf.add(i, 100 + i);
                }
                assert!(inf.full(), "{}: not full at {end}", c.name);
            };
            add_until_full(&mut inf, 0, c.full_at);
            inf.free_le(c.free_le);
            add_until_full(&mut inf, c.full_at, c.again_at);

            let mut again = inf.clone();
            let r = std::panic::catch_unwind(move || again.add(100, 1024));
            assert!(r.is_err(), "{}: add on a full window did not panic", c.name);
        }
    }

    #[test]
    fn reset_does_not_leak_bytes_across_epochs() {
        let mut inf = Inflights::new(10, 1000);
        let mut index = 0;
        for _ in 0..100 {
            inf.reset();
            for _ in 0..5 {
                assert!(!inf.full());
                index += 1;
                inf.add(index, 16);
            }
            inf.free_le(index - 2);
            assert!(!inf.full());
            assert_eq!(inf.count(), 2);
        }
        inf.free_le(index);
        assert_eq!(inf.count(), 0);
    }
}
