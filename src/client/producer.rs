//! `Producer`: single records into one group, batched under load, exactly
//! once. `send(record)` queues the record and returns at once with a
//! handle; a thread of the producer's own gathers queued records into a
//! batch (up to `max_batch_records` / `max_batch_bytes`, or whatever came
//! within `linger` of the first), numbers it under the producer's id and
//! sequence, and keeps up to `max_in_flight` batches in flight on the
//! group's leader connection, as Kafka producers do. Each handle learns
//! its record's offset once its batch commits.
//!
//! Retries keep exactly-once: a batch is resent as the same bytes (the
//! group answers a copy that committed with its original offsets), and
//! batches are awaited in sequence order, so a batch is resent only after
//! every earlier one is settled. `max_in_flight` is at most
//! `REMEMBERED_BATCHES` (5), the batches a group remembers per producer:
//! a retry of an older one could not be recognised. A batch refused with
//! `SequenceGap` (it overtook an earlier batch's resend to a new leader)
//! is sent again once the earlier one settled, and the batches in flight
//! behind it with it, in order. A batch that fails for
//! good fails its records' handles, and the producer starts over under a
//! new id (the batch's fate is unknown).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::completion::{Completer, Completion, completion};
use super::{Client, ClientError, PendingAppend, random_producer_id};
use crate::clientpb::error::Kind;
use crate::log::{BATCH_HEADER_LEN, REMEMBERED_BATCHES};

/// How a producer batches.
#[derive(Debug, Clone, Copy)]
pub struct ProducerOptions {
    /// How long the first record of a batch waits for others.
    pub linger: Duration,
    pub max_batch_records: usize,
    /// Bytes of records (with their 4-byte prefixes) in one batch.
    pub max_batch_bytes: usize,
    /// Batches in flight at once (1..=5).
    pub max_in_flight: usize,
    /// Records queued and not yet in a batch; `send` blocks beyond it.
    pub max_queued: usize,
}

impl Default for ProducerOptions {
    fn default() -> Self {
        ProducerOptions {
            linger: Duration::from_millis(1),
            max_batch_records: 1024,
            max_batch_bytes: 512 << 10,
            max_in_flight: REMEMBERED_BATCHES,
            max_queued: 1 << 16,
        }
    }
}

type Outcome = Result<u64, ClientError>;

/// A record's offset, once its batch commits. Wait for it by blocking
/// (`wait`) or, from async code on any runtime, by awaiting the handle.
pub struct RecordHandle {
    rx: Completion<Outcome>,
}

fn stopped() -> ClientError {
    ClientError::Disconnected("the producer stopped".into())
}

impl RecordHandle {
    /// Waits for the record's offset (the producer's client's timeout
    /// bounds each batch, retries included).
    pub fn wait(self) -> Outcome {
        self.rx.wait().unwrap_or_else(|| Err(stopped()))
    }
}

impl Future for RecordHandle {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|o| o.unwrap_or_else(|| Err(stopped())))
    }
}

struct Queued {
    record: Bytes,
    tx: Completer<Outcome>,
}

/// Single records into one group, batched (see the module doc).
pub struct Producer {
    tx: Option<SyncSender<Queued>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<ProducerStats>>,
}

/// What a producer did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStats {
    pub records: u64,
    pub batches: u64,
    /// Batches answered as duplicates (a retry whose first copy committed).
    pub duplicates: u64,
    /// Batches sent again after a `SequenceGap`.
    pub gap_resends: u64,
    pub failed_batches: u64,
}

impl Producer {
    /// A producer of `group`'s records through `client`.
    pub fn new(client: Arc<Client>, group: u64, opts: ProducerOptions) -> Producer {
        let opts = ProducerOptions {
            max_in_flight: opts.max_in_flight.clamp(1, REMEMBERED_BATCHES),
            max_batch_records: opts.max_batch_records.max(1),
            max_queued: opts.max_queued.max(1),
            ..opts
        };
        let (tx, rx) = mpsc::sync_channel(opts.max_queued);
        let stats = Arc::new(Mutex::new(ProducerStats::default()));
        let st = stats.clone();
        let thread = std::thread::Builder::new()
            .name(format!("corelog-producer-{group}"))
            .spawn(move || run(&client, group, opts, &rx, &st))
            .expect("spawning the producer thread");
        Producer {
            tx: Some(tx),
            thread: Some(thread),
            stats,
        }
    }

    /// Queues `record`; the handle learns its offset. Blocks only while
    /// `max_queued` records wait for a batch (back-pressure).
    pub fn send(&self, record: &[u8]) -> RecordHandle {
        let (tx, rx) = completion();
        let q = Queued {
            record: Bytes::copy_from_slice(record),
            tx,
        };
        if let Some(s) = &self.tx
            && let Err(e) = s.send(q)
        {
            e.0.tx.complete(Err(stopped()));
        }
        RecordHandle { rx }
    }

    pub fn stats(&self) -> ProducerStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Producer {
    /// Sends what is queued, waits for every batch, then stops.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One batch: its bytes, its sequence, its records' handles.
struct Batch {
    bytes: Bytes,
    waiters: Vec<Completer<Outcome>>,
}

struct Seq {
    id: u64,
    next: u64,
}

fn run(
    client: &Client,
    group: u64,
    opts: ProducerOptions,
    rx: &Receiver<Queued>,
    stats: &Mutex<ProducerStats>,
) {
    let mut seq = Seq {
        id: random_producer_id(),
        next: 0,
    };
    let mut in_flight: VecDeque<(Batch, PendingAppend<'_>)> = VecDeque::new();
    let mut open = true;
    let mut carry: Option<Queued> = None;
    while open || !in_flight.is_empty() || carry.is_some() {
        // Gather a batch while there is room in flight.
        if in_flight.len() < opts.max_in_flight && (open || carry.is_some()) {
            let (batch, still_open) = gather(rx, &opts, &mut carry, in_flight.is_empty());
            open &= still_open;
            if let Some(records) = batch {
                let n = records.len() as u64;
                let refs: Vec<&[u8]> = records.iter().map(|q| &q.record[..]).collect();
                match client.build_batch(seq.id, seq.next, &refs) {
                    Ok(bytes) => {
                        seq.next += n;
                        let waiters = records.into_iter().map(|q| q.tx).collect();
                        let p = client.send_append(group, bytes.clone());
                        in_flight.push_back((Batch { bytes, waiters }, p));
                        bump(stats, |s| {
                            s.batches += 1;
                            s.records += n;
                        });
                    }
                    Err(e) => {
                        for q in records {
                            q.tx.complete(Err(e.clone()));
                        }
                    }
                }
                continue;
            }
        }
        // Settle the oldest batch.
        let Some((batch, p)) = in_flight.pop_front() else {
            continue;
        };
        let mut r = p.wait();
        let mut resends = 0;
        while let Err(ClientError::Server(Kind::SequenceGap(_))) = &r {
            // It overtook an earlier batch's resend; every earlier batch
            // is settled now. It goes again, and every batch in flight
            // after it goes again behind it, in order: their first copies
            // were sent before this one's, so they are refused for the
            // same gap (or, if they landed after all, answered as
            // duplicates). Without this rewind each of them would be
            // refused in turn, and so would every batch sent meanwhile.
            resends += 1;
            if resends > 3 {
                break;
            }
            let again = client.send_append(group, batch.bytes.clone());
            for (b, p) in in_flight.iter_mut() {
                *p = client.send_append(group, b.bytes.clone());
            }
            bump(stats, |s| s.gap_resends += 1 + in_flight.len() as u64);
            r = again.wait();
        }
        match r {
            Ok(a) => {
                if a.duplicate {
                    bump(stats, |s| s.duplicates += 1);
                }
                for (k, w) in batch.waiters.into_iter().enumerate() {
                    w.complete(Ok(a.base_offset + k as u64));
                }
            }
            Err(e) => {
                bump(stats, |s| s.failed_batches += 1);
                for w in batch.waiters {
                    w.complete(Err(e.clone()));
                }
                // Its fate is unknown, and the batches after it would be
                // refused for the gap: they fail too, and the producer
                // starts over under a new id.
                for (b, _) in in_flight.drain(..) {
                    bump(stats, |s| s.failed_batches += 1);
                    for w in b.waiters {
                        w.complete(Err(e.clone()));
                    }
                }
                seq = Seq {
                    id: random_producer_id(),
                    next: 0,
                };
            }
        }
    }
}

fn bump(stats: &Mutex<ProducerStats>, f: impl FnOnce(&mut ProducerStats)) {
    f(&mut stats.lock().unwrap_or_else(|p| p.into_inner()));
}

/// Takes the records of the next batch: waits for a first one (at most
/// until there is something in flight to settle: `idle` says there is
/// not), then takes what comes within `linger`, up to the batch limits.
/// Returns the records (if any) and whether the queue is still open.
fn gather(
    rx: &Receiver<Queued>,
    opts: &ProducerOptions,
    carry: &mut Option<Queued>,
    idle: bool,
) -> (Option<Vec<Queued>>, bool) {
    let first = match carry.take() {
        Some(q) => q,
        None => {
            let got = if idle {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                // Something is in flight: do not sit here while it could
                // be settled.
                rx.try_recv().map_err(|e| match e {
                    mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                    mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            };
            match got {
                Ok(q) => q,
                Err(RecvTimeoutError::Timeout) => return (None, true),
                Err(RecvTimeoutError::Disconnected) => return (None, false),
            }
        }
    };
    let mut bytes = BATCH_HEADER_LEN + 4 + first.record.len();
    let mut out = vec![first];
    let deadline = Instant::now() + opts.linger;
    while out.len() < opts.max_batch_records {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = if left.is_zero() {
            match rx.try_recv() {
                Ok(q) => Ok(q),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => Err(()),
            }
        } else {
            match rx.recv_timeout(left) {
                Ok(q) => Ok(q),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => Err(()),
            }
        };
        match next {
            Ok(q) => {
                if bytes + 4 + q.record.len() > opts.max_batch_bytes {
                    *carry = Some(q);
                    break;
                }
                bytes += 4 + q.record.len();
                out.push(q);
            }
            Err(()) => return (Some(out), false),
        }
    }
    (Some(out), true)
}
