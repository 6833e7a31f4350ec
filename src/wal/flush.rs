//! The flush: pending parts become one ordered list of writes handed to
//! the disk's `Flusher` (each write followed by a data sync of its file),
//! either submitted and reaped later (`start_flush`, the io_uring path) or
//! run to its end on the calling thread (`flush_inline`); a completed flush
//! completes its tickets, a failed one poisons the WAL and its directory
//! for the rest of the process. Both paths share everything but the call
//! that runs the writes: the same bytes, sequence numbers, order, failure
//! handling and completion.

use std::os::fd::RawFd;

use super::Wal;
use super::disk::{self, Disk, FlushPoll, FlushWrite, Flusher};
use super::error::{Error, Result};
use super::format::{self, BATCH_RECORD_SIZE};
use super::frame::END_MARKER;
use super::segment;

impl<D: Disk> Wal<D> {
    /// Writes every pending record in one io_uring submission (writes and
    /// fdatasync, linked), waits for it, and completes every ticket of this
    /// flush (a flush already in flight is waited for first). Returns the
    /// number of the last completed flush. On failure the WAL is poisoned
    /// for good, and so is its directory for this process: what reached the
    /// disk is unknown and the page cache cannot be trusted, so the shard
    /// stops and a new process recovers the directory.
    pub fn flush(&mut self) -> Result<u64> {
        self.wait_flush()?;
        if self.start_flush()?.is_some() {
            self.wait_flush()?;
        }
        Ok(self.durable_flush)
    }

    /// Starts a flush of every pending record without waiting for it, so
    /// that the shard can go on (appends go to the next flush) while the
    /// fdatasync runs; `poll_flush` or `wait_flush` completes it. Only one
    /// flush is ever in flight (recovery relies on it): one already in
    /// flight is waited for first. Returns the number of the flush started,
    /// `None` if nothing was pending.
    pub fn start_flush(&mut self) -> Result<Option<u64>> {
        self.wait_flush()?;
        let Some((n, writes)) = self.seal() else {
            return Ok(None);
        };
        match self.flusher.as_mut() {
            // A failure to start comes out of the next poll.
            Some(f) => f.submit(writes),
            None => return Err(Error::ReadOnly),
        }
        Ok(Some(n))
    }

    /// Flushes every pending record on the calling thread, blocking until
    /// it is durable (in production `pwrite` then `fdatasync` per segment
    /// written, no io_uring), and completes every ticket of the flush.
    /// Returns the number of the last completed flush.
    ///
    /// For a shard with nothing else to do while a small flush runs: an
    /// io_uring fdatasync runs on a kernel worker thread, and its two
    /// wakeups (the worker's, then the shard's) are the whole difference
    /// between a one-record flush through the ring and a plain pwrite +
    /// fdatasync loop (docs/architecture.md, "Two flush paths"). A shard
    /// with other work keeps `start_flush`, which does not block it.
    ///
    /// Everything else is the ring path's: the same bytes on disk (batch
    /// headers, end markers, sequence numbers), the same order (a flush
    /// submitted and still in flight is waited for first, so flushes reach
    /// the disk in the order they were numbered), all or nothing across
    /// segments, the same segment rolls and preparation (those happen as
    /// records are queued, not here), and the same failure rule: any error
    /// poisons the WAL and its directory for the process, and fails every
    /// waiter.
    pub fn flush_inline(&mut self) -> Result<u64> {
        self.wait_flush()?;
        let Some((_, writes)) = self.seal() else {
            return Ok(self.durable_flush);
        };
        let outcome = match self.flusher.as_mut() {
            Some(f) => f.run_inline(writes),
            None => return Err(Error::ReadOnly),
        };
        self.finish(outcome)
    }

    /// Turns the pending parts into the next flush: fills in each part's
    /// batch header and end marker, moves the buffers into the list of
    /// writes (the parts stay in `inflight` for the segments they name)
    /// and numbers the flush. `None` if nothing is pending. The caller has
    /// checked that no flush is in flight and the WAL is writable.
    fn seal(&mut self) -> Option<(u64, Vec<FlushWrite<D::File>>)> {
        if self.parts.is_empty() {
            return None;
        }
        let n_parts = self.parts.len();
        for (k, p) in self.parts.iter_mut().enumerate() {
            let body = p.buf.len() - BATCH_RECORD_SIZE;
            let h = format::BatchHeader {
                flush_seq: p.batch_seq,
                prev_seq: p.prev_seq,
                body_len: body as u32,
                records: p.records,
                // Every part but the last says the flush goes on: recovery
                // applies a flush only with all of its parts.
                flags: if k + 1 < n_parts {
                    format::BATCH_CONTINUED
                } else {
                    0
                },
            };
            format::write_batch_header(&mut p.buf[..BATCH_RECORD_SIZE], p.seed, &h);
            // The end marker: overwritten by the next flush's batch, it is
            // what ends the data of a sealed segment whose file was
            // recycled (beyond it lie stale bytes of its previous life).
            p.buf.extend_from_slice(&[0u8; END_MARKER]);
        }
        // The buffers move into the flush (their heap memory does not
        // move) and come back when it is over; the parts stay in
        // `inflight` for the segments they name.
        let mut writes = std::mem::take(&mut self.writes);
        for p in &mut self.parts {
            let Some(s) = self.segments.get(&p.seq) else {
                // gc flushes before it deletes anything.
                panic!(
                    "wal: pending records for segment {} which is not open",
                    p.seq
                );
            };
            writes.push(FlushWrite {
                file: s.file.clone(),
                offset: p.offset,
                buf: std::mem::take(&mut p.buf),
            });
        }
        std::mem::swap(&mut self.parts, &mut self.inflight);
        self.pending_bytes = 0;
        let n = self.next_flush;
        self.next_flush += 1;
        Some((n, writes))
    }

    /// Makes the disk signal `eventfd` (from `eventfd(2)`) when a flush's
    /// completions arrive: the shard's executor waits on it and then calls
    /// `poll_flush`, instead of polling in a loop.
    pub fn register_eventfd(&self, eventfd: RawFd) -> Result<()> {
        match self.flusher.as_ref() {
            Some(f) => f
                .register_eventfd(eventfd)
                .map_err(|e| Error::io("io_uring register eventfd", self.disk.dir(), e)),
            None => Err(Error::ReadOnly),
        }
    }

    /// Completes the flush in flight if the disk is done with it, without
    /// blocking. Returns the number of the last completed flush.
    pub fn poll_flush(&mut self) -> Result<u64> {
        self.reap(false)
    }

    /// Waits for the flush in flight, if any. Returns the number of the
    /// last completed flush.
    pub fn wait_flush(&mut self) -> Result<u64> {
        self.reap(true)
    }

    pub(super) fn reap(&mut self, wait: bool) -> Result<u64> {
        self.check_writable()?;
        if self.inflight.is_empty() {
            return Ok(self.durable_flush);
        }
        let done = match self.flusher.as_mut() {
            Some(f) => f.poll(wait),
            None => return Err(Error::ReadOnly),
        };
        self.finish(done)
    }

    /// Ends the flush in `inflight` as the disk says: completes its
    /// tickets if it is durable, poisons the WAL if it failed.
    fn finish(&mut self, done: FlushPoll<D::File>) -> Result<u64> {
        match done {
            FlushPoll::Done(writes) => {
                // The flush in flight is always the one before `next_flush`.
                let n = self.next_flush - 1;
                self.durable_flush = n;
                self.take_back(writes);
                if !D::LIVE_VIEWS
                    && let Err(e) = self.refresh_views()
                {
                    return Err(self.poison(e));
                }
                self.inflight.clear();
                self.signal.complete(n);
                self.evict();
                Ok(n)
            }
            FlushPoll::Pending => Ok(self.durable_flush),
            FlushPoll::Idle => unreachable!("wal: a flush in flight that the disk does not know"),
            FlushPoll::Failed { error, writes } => {
                let disk::FlushError { write, sync, error } = error;
                let path = self
                    .inflight
                    .get(write)
                    .map(|p| segment::path(&self.disk, &segment::file_name(p.seq)))
                    .unwrap_or_else(|| self.disk.dir().to_path_buf());
                let op = if sync { "fdatasync" } else { "write" };
                self.take_back(writes);
                self.inflight.clear();
                Err(self.poison(Error::io(op, path, error)))
            }
        }
    }

    /// Keeps a few buffers of a finished flush (and its `Vec` of writes)
    /// for the next ones.
    pub(super) fn take_back(&mut self, mut writes: Vec<FlushWrite<D::File>>) {
        for w in writes.drain(..) {
            if self.spare.len() < 4 && w.buf.capacity() > 0 {
                self.spare.push(w.buf);
            }
        }
        self.writes = writes;
    }

    /// Takes new views of the segments the flush in flight wrote, on a
    /// disk whose views do not show later writes.
    pub(super) fn refresh_views(&mut self) -> Result<()> {
        for p in &self.inflight {
            if let Some(s) = self.segments.get_mut(&p.seq) {
                s.map = segment::view(&s.file, &s.path)?;
            }
        }
        Ok(())
    }

    /// Marks the WAL failed and tells every waiter.
    /// The directory is recorded as poisoned for the rest of the process.
    pub(super) fn poison(&mut self, e: Error) -> Error {
        let cause = e.to_string();
        if let Some(l) = self.lock.as_ref() {
            self.disk.poison(l, &cause);
        }
        self.poisoned = Some(cause);
        self.signal.fail();
        e
    }
}
