//! The production `Flusher`: one io_uring submission carrying every write of the flush and
//! its fdatasync, linked so that the kernel runs them in order and each
//! fdatasync runs only if the writes before it completed in full. It is
//! submitted without waiting (`submit`) and reaped later (`poll`), so the
//! shard can work while the disk syncs; one flush is in flight at a time. A flush
//! that touches two segments writes and syncs the older one first (the
//! link guarantees it), so that a crash can tear only the newest written
//! batch: recovery depends on that (see recovery.rs).
//!
//! Why the `io-uring` crate and buffered writes rather than glommio's DMA
//! files: measured on this machine (docs/benchmarks.md), write+fdatasync of
//! 128 B and 4 KiB into zero-filled segments runs at the same rate through a
//! linked io_uring submission as through plain pwrite+fdatasync, while a DMA
//! WAL must rewrite the whole partial 4 KiB block on every small flush and
//! brings an executor the WAL does not need: the shard's executor polls
//! the WAL, the WAL does not own one.

use std::io;
use std::os::fd::RawFd;

use io_uring::{IoUring, opcode, squeue, types};

use super::uring::UringFile;
use super::{DiskFile, FlushError, FlushPoll, FlushWrite, Flusher};

/// Submission queue size: two entries (write, fdatasync) per segment a
/// flush touches; a flush touching more is split into several rounds.
const RING_ENTRIES: u32 = 32;

/// How often `drain` retries a wait that fails (other than EINTR) before
/// it gives up and the buffers are leaked rather than freed.
const DRAIN_ATTEMPTS: u32 = 1000;

/// A failure to inject into the next flush (tests and crash experiments):
/// the first `land_bytes` bytes of the flush reach the file, then the flush
/// fails with `errno` (ENOSPC imitates a full disk, EIO a dying one). With
/// `scatter`, instead, a pseudo-random subset (seeded) of the 512-byte
/// sectors of the flush's first segment part lands, in no particular order,
/// as a power cut can leave the writeback of an unsynced flush.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub land_bytes: usize,
    pub errno: i32,
    pub scatter: Option<u64>,
}

/// Owns the ring and the one flush in flight, whose writes (buffers
/// included) it holds from `submit` until a `poll` hands them back.
pub struct UringFlusher {
    ring: IoUring,
    writes: Vec<FlushWrite<UringFile>>,
    busy: bool,
    /// Bytes written so far and whether synced, per write of the flush.
    progress: Vec<(usize, bool)>,
    /// Entries pushed to the ring (submitted, or left in the submission
    /// queue by a failed submit) and not yet reaped: while it is not zero
    /// the kernel may still read the flush's buffers.
    outstanding: u32,
    /// The flush failed (to start, or a wait failed): reported by `poll`
    /// once nothing of it is left in the kernel.
    failed: Option<FlushError>,
    fault: Option<Fault>,
    /// An injected fault being played out by an inline flush's syscalls
    /// (uring_inline.rs).
    pub(super) inline_fault: Option<super::uring_inline::ArmedFault>,
    /// Benchmarks only: each write's fdatasync is a no-op in its place
    /// (same completions, no sync).
    pub(super) no_fsync: bool,
    /// Test hooks: waits to fail with EINTR, and one wait to fail with an
    /// errno, before the kernel is asked (the flush stays in flight).
    #[cfg(test)]
    fake_eintr: u32,
    #[cfg(test)]
    fake_wait_error: Option<i32>,
    /// Test hooks of the inline path (uring_inline.rs).
    #[cfg(test)]
    pub(super) inline_hooks: super::uring_inline::InlineHooks,
}

fn flush_error(write: usize, sync: bool, error: io::Error) -> FlushError {
    FlushError { write, sync, error }
}

impl UringFlusher {
    pub fn new() -> io::Result<Self> {
        Ok(UringFlusher {
            ring: IoUring::new(RING_ENTRIES)?,
            writes: Vec::with_capacity(4),
            busy: false,
            progress: Vec::with_capacity(4),
            outstanding: 0,
            failed: None,
            fault: None,
            inline_fault: None,
            no_fsync: false,
            #[cfg(test)]
            fake_eintr: 0,
            #[cfg(test)]
            fake_wait_error: None,
            #[cfg(test)]
            inline_hooks: Default::default(),
        })
    }

    /// Arms a fault for the next flush (submitted or run inline).
    pub fn inject(&mut self, f: Fault) {
        self.fault = Some(f);
    }

    /// The fault armed for the next flush, taken (it fires once).
    pub(super) fn take_fault(&mut self) -> Option<Fault> {
        self.fault.take()
    }

    /// Whether nothing of any flush is left in the kernel: only then may
    /// the buffers of a failed flush be released or reused.
    fn quiescent(&self) -> bool {
        self.outstanding == 0
    }

    /// Submits what is queued and waits for `want` completions.
    fn enter(&mut self, want: usize) -> io::Result<usize> {
        #[cfg(test)]
        {
            if self.fake_eintr > 0 {
                self.fake_eintr -= 1;
                return Err(io::Error::from_raw_os_error(libc::EINTR));
            }
            if let Some(e) = self.fake_wait_error.take() {
                return Err(io::Error::from_raw_os_error(e));
            }
        }
        self.ring.submit_and_wait(want)
    }

    /// The first write not yet synced (where a failure of the whole ring
    /// is reported).
    fn current(&self) -> usize {
        self.progress.iter().position(|p| !p.1).unwrap_or(0)
    }

    /// After a failure: waits until every entry of the flush is out of the
    /// kernel (retrying EINTR, and other errors up to `DRAIN_ATTEMPTS`
    /// times), reaping and ignoring the completions. If the kernel may
    /// still hold part of it afterwards (`quiescent()` false), its buffers
    /// must never be freed: `fail` leaks them.
    fn drain(&mut self) {
        let mut attempts = 0;
        loop {
            while self.ring.completion().next().is_some() {
                self.outstanding -= 1;
            }
            if self.outstanding == 0 || attempts >= DRAIN_ATTEMPTS {
                break;
            }
            match self.enter(self.outstanding as usize) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
    }

    /// Ends the flush in flight with `error`, once the kernel is done with
    /// it; the buffers come back, or are leaked if that is not certain.
    fn fail(&mut self, error: FlushError) -> FlushPoll<UringFile> {
        self.drain();
        self.busy = false;
        let mut writes = std::mem::take(&mut self.writes);
        if !self.quiescent() {
            for w in &mut writes {
                std::mem::forget(std::mem::take(&mut w.buf));
            }
        }
        FlushPoll::Failed { error, writes }
    }

    /// Pushes the chain of what is left to do (everything, or what a short
    /// write or a cancelled link left) and submits it.
    fn push_chain(&mut self) -> Result<(), FlushError> {
        let Some(first) = self.progress.iter().position(|p| !p.1) else {
            return Ok(());
        };
        let mut pushed = 0u32;
        let queued = self.queue_chain(first, &mut pushed);
        // The entries are in the submission queue now, submitted or not: a
        // later enter would submit them, so they count as outstanding.
        self.outstanding += pushed;
        queued?;
        loop {
            match self.ring.submit() {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(flush_error(first, false, e)),
            }
        }
    }

    /// Queues writes and syncs from write `first` on, as many as the ring
    /// takes, counting them in `pushed`.
    fn queue_chain(&mut self, first: usize, pushed: &mut u32) -> Result<(), FlushError> {
        let mut sq = self.ring.submission();
        let full = |i| flush_error(i, false, io::Error::other("io_uring submission queue full"));
        let mut i = first;
        while i < self.writes.len() && *pushed + 2 <= RING_ENTRIES {
            let w = &self.writes[i];
            let (done, _) = self.progress[i];
            let fd = types::Fd(w.file.fd());
            let last = i + 1 == self.writes.len() || *pushed + 4 > RING_ENTRIES;
            if done < w.buf.len() {
                let rest = w.buf.len() - done;
                let len = u32::try_from(rest).map_err(|_| {
                    flush_error(
                        i,
                        false,
                        io::Error::new(io::ErrorKind::InvalidInput, "write over 4 GiB"),
                    )
                })?;
                let wr = opcode::Write::new(fd, w.buf[done..].as_ptr(), len)
                    .offset(w.offset + done as u64)
                    .build()
                    .flags(squeue::Flags::IO_LINK)
                    .user_data((i as u64) << 1);
                // SAFETY: the buffer is owned by this flusher until every
                // entry of the flush is reaped (`poll` hands it back only
                // then, `fail` leaks it otherwise, `Drop` waits), and its
                // heap memory does not move when the `Vec` holding it does.
                unsafe { sq.push(&wr) }.map_err(|_| full(i))?;
                *pushed += 1;
            }
            let mut s = if self.no_fsync {
                opcode::Nop::new().build()
            } else {
                opcode::Fsync::new(fd)
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
            }
            .user_data(((i as u64) << 1) | 1);
            if !last {
                s = s.flags(squeue::Flags::IO_LINK);
            }
            // SAFETY: fsync references no memory.
            unsafe { sq.push(&s) }.map_err(|_| full(i))?;
            *pushed += 1;
            i += 1;
            if last {
                break;
            }
        }
        Ok(())
    }

    /// Lands a prefix (or scattered sectors) of the flush with plain
    /// pwrite, then fails as `f` says.
    pub(super) fn fail_with(writes: &[FlushWrite<UringFile>], f: Fault) -> FlushError {
        let os = |i, sync| flush_error(i, sync, io::Error::from_raw_os_error(f.errno));
        let failed_write = |i| flush_error(i, false, io::Error::last_os_error());
        if let (Some(seed), Some(w)) = (f.scatter, writes.first()) {
            let mut x = seed | 1;
            let end = w.offset + w.buf.len() as u64;
            let mut sector = w.offset & !511;
            while sector < end {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let from = sector.max(w.offset);
                let to = (sector + 512).min(end);
                if x & 1 == 1 {
                    let at = (from - w.offset) as usize;
                    let bytes = &w.buf[at..at + (to - from) as usize];
                    if DiskFile::write_at(&w.file, bytes, from).is_err() {
                        return failed_write(0);
                    }
                }
                sector += 512;
            }
            return os(0, false);
        }
        let mut left = f.land_bytes;
        for (i, w) in writes.iter().enumerate() {
            let n = left.min(w.buf.len());
            if n > 0 && DiskFile::write_at(&w.file, &w.buf[..n], w.offset).is_err() {
                return failed_write(i);
            }
            left -= n;
            if left == 0 {
                return os(i, false);
            }
        }
        os(writes.len().saturating_sub(1), true)
    }
}

impl Flusher for UringFlusher {
    type File = UringFile;

    /// Every write, each followed by an fdatasync of its file, in order, as
    /// one linked chain in one submission. Returns without waiting.
    fn submit(&mut self, writes: Vec<FlushWrite<UringFile>>) {
        assert!(!self.busy, "UringFlusher::submit: a flush is in flight");
        self.busy = true;
        self.writes = writes;
        self.failed = None;
        if let Some(f) = self.fault.take() {
            self.failed = Some(Self::fail_with(&self.writes, f));
            return;
        }
        self.progress.clear();
        self.progress.resize(self.writes.len(), (0, false));
        if let Err(e) = self.push_chain() {
            self.failed = Some(e);
        }
    }

    /// Reaps completions of the flush in flight; with `wait`, blocks until
    /// it is over. A failure is returned only once nothing of the flush is
    /// left in the kernel, or, if that cannot be confirmed, with the
    /// buffers leaked (the writes come back with empty buffers).
    fn poll(&mut self, wait: bool) -> FlushPoll<UringFile> {
        if !self.busy {
            return FlushPoll::Idle;
        }
        loop {
            if let Some(e) = self.failed.take() {
                return self.fail(e);
            }
            if self.outstanding > 0 && wait {
                // The chain completes as a whole: wait for all of it at once.
                // A signal interrupts the wait, not the flush: wait again.
                match self.enter(self.outstanding as usize) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.failed = Some(flush_error(self.current(), false, e));
                        continue;
                    }
                }
            }
            let mut failure = None;
            while let Some(cqe) = self.ring.completion().next() {
                self.outstanding -= 1;
                let i = (cqe.user_data() >> 1) as usize;
                let is_sync = cqe.user_data() & 1 == 1;
                let res = cqe.result();
                if res == -libc::ECANCELED || failure.is_some() {
                    // A link before it failed or was short: redone below
                    // (or the flush failed already).
                    continue;
                }
                if res < 0 {
                    failure = Some(flush_error(i, is_sync, io::Error::from_raw_os_error(-res)));
                } else if is_sync {
                    self.progress[i].1 = true;
                } else if res == 0 {
                    let e = io::Error::new(io::ErrorKind::WriteZero, "write returned 0");
                    failure = Some(flush_error(i, false, e));
                } else {
                    self.progress[i].0 += res as usize;
                }
            }
            if let Some(e) = failure {
                // Reported once the rest of the chain is reaped.
                self.failed = Some(e);
                if self.outstanding == 0 || wait {
                    continue;
                }
                return FlushPoll::Pending;
            }
            if self.outstanding > 0 {
                if wait {
                    continue;
                }
                return FlushPoll::Pending;
            }
            // Nothing of this flush is in the kernel any more.
            if self.progress.iter().all(|p| p.1) {
                self.busy = false;
                return FlushPoll::Done(std::mem::take(&mut self.writes));
            }
            // A short write broke the chain: submit what is left.
            if let Err(e) = self.push_chain() {
                self.failed = Some(e);
                continue;
            }
            if !wait {
                return FlushPoll::Pending;
            }
        }
    }

    /// pwrite + fdatasync per write on this thread (uring_inline.rs).
    fn run_inline(&mut self, writes: Vec<FlushWrite<UringFile>>) -> FlushPoll<UringFile> {
        assert!(!self.busy, "UringFlusher::run_inline: a flush is in flight");
        self.run_inline_now(writes)
    }

    fn busy(&self) -> bool {
        self.busy
    }

    fn register_eventfd(&self, eventfd: RawFd) -> io::Result<()> {
        self.ring.submitter().register_eventfd(eventfd)
    }
}

impl Drop for UringFlusher {
    /// The kernel may still be writing from the flush's buffers: wait for
    /// it (a failure leaks them rather than free them).
    fn drop(&mut self) {
        if self.busy {
            let _ = self.poll(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Disk, UringDisk};
    use super::*;

    fn one_file() -> (tempfile::TempDir, UringFile) {
        let dir = tempfile::tempdir().unwrap();
        let disk = UringDisk::open(dir.path(), false).unwrap();
        let f = disk.create("f").unwrap();
        (dir, f)
    }

    fn one_write(w: &mut UringFlusher, f: &UringFile, buf: Vec<u8>) {
        w.submit(vec![FlushWrite {
            file: f.clone(),
            offset: 0,
            buf,
        }]);
    }

    fn contents(f: &UringFile, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        std::os::unix::fs::FileExt::read_exact_at(f.inner_file(), &mut b, 0).unwrap();
        b
    }

    #[test]
    fn an_interrupted_wait_is_retried_and_the_flush_completes() {
        let (_d, f) = one_file();
        let buf = vec![0x5a; 1 << 20];
        let mut w = UringFlusher::new().unwrap();
        w.fake_eintr = 3;
        one_write(&mut w, &f, buf.clone());
        match w.poll(true) {
            FlushPoll::Done(ws) => assert_eq!(ws[0].buf, buf, "the buffer comes back intact"),
            other => panic!("expected Done, got {other:?}"),
        }
        assert_eq!(w.fake_eintr, 0, "every interrupted wait was retried");
        assert!(w.quiescent());
        assert_eq!(contents(&f, buf.len()), buf);
    }

    #[test]
    fn a_failed_wait_returns_only_once_the_kernel_is_done_with_the_flush() {
        let (_d, f) = one_file();
        let buf = vec![0xa5; 4 << 20];
        let mut w = UringFlusher::new().unwrap();
        w.fake_wait_error = Some(libc::EIO);
        one_write(&mut w, &f, buf.clone());
        match w.poll(true) {
            FlushPoll::Failed { error, writes } => {
                assert_eq!(error.error.raw_os_error(), Some(libc::EIO));
                // Nothing of the flush is in the kernel, so the buffer is
                // handed back (not leaked): its write ran to the end first.
                assert_eq!(writes[0].buf.len(), buf.len());
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        assert!(w.quiescent());
        assert!(!w.busy());
        assert_eq!(contents(&f, buf.len()), buf);
        // The flusher is usable again (the WAL poisons itself regardless).
        one_write(&mut w, &f, vec![1u8; 100]);
        assert!(matches!(w.poll(true), FlushPoll::Done(_)));
    }
}
