//! The flush: one io_uring submission carrying every write of the flush and
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
use std::path::{Path, PathBuf};

use io_uring::{IoUring, opcode, squeue, types};

use super::error::{Error, Result};

/// Submission queue size: two entries (write, fdatasync) per segment a
/// flush touches; a flush touching more is split into several rounds.
const RING_ENTRIES: u32 = 32;

/// One write of a flush: `len` bytes at `ptr` go to `offset` of the file
/// `fd`. The bytes belong to the WAL's in-flight buffers, which it keeps
/// alive (and unmoved) until the flush has completed or failed.
pub struct WriteOp {
    pub fd: RawFd,
    pub ptr: *const u8,
    pub len: usize,
    pub offset: u64,
    pub path: PathBuf,
}

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

/// Owns the ring and the one flush in flight. Reused for every flush.
pub struct Writer {
    ring: IoUring,
    ops: Vec<WriteOp>,
    /// Bytes written so far and whether synced, per op of the current flush.
    progress: Vec<(usize, bool)>,
    /// Entries pushed to the ring (submitted, or left in the submission
    /// queue by a failed submit) and not yet reaped: while it is not zero
    /// the kernel may still read the flush's buffers.
    outstanding: u32,
    fault: Option<Fault>,
    /// Test hooks: waits to fail with EINTR, and one wait to fail with an
    /// errno, before the kernel is asked (the flush stays in flight).
    #[cfg(test)]
    fake_eintr: u32,
    #[cfg(test)]
    fake_wait_error: Option<i32>,
}

/// How often `drain` retries a wait that fails (other than EINTR) before
/// it gives up and the buffers are leaked rather than freed.
const DRAIN_ATTEMPTS: u32 = 1000;

// SAFETY: the raw pointers in `ops` point into buffers owned by the `Wal`
// that owns this `Writer`; they move (and are freed) only together.
unsafe impl Send for Writer {}

impl Writer {
    pub fn new() -> io::Result<Self> {
        Ok(Writer {
            ring: IoUring::new(RING_ENTRIES)?,
            ops: Vec::with_capacity(4),
            progress: Vec::with_capacity(4),
            outstanding: 0,
            fault: None,
            #[cfg(test)]
            fake_eintr: 0,
            #[cfg(test)]
            fake_wait_error: None,
        })
    }

    /// Arms a fault for the next flush.
    pub fn inject(&mut self, f: Fault) {
        self.fault = Some(f);
    }

    /// Has the kernel signal `eventfd` whenever a completion is posted, so
    /// that an executor can sleep on it instead of polling.
    pub fn register_eventfd(&self, eventfd: RawFd) -> io::Result<()> {
        self.ring.submitter().register_eventfd(eventfd)
    }

    /// Whether a flush is in flight.
    pub fn busy(&self) -> bool {
        !self.ops.is_empty()
    }

    /// Whether nothing of any flush is left in the kernel: only then may
    /// the buffers of a failed flush be released or reused.
    pub fn quiescent(&self) -> bool {
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

    /// After a failure: waits until every entry of the flush is out of the
    /// kernel (retrying EINTR, and other errors up to `DRAIN_ATTEMPTS`
    /// times), reaping and ignoring the completions. The flush is over
    /// (failed) once this returns; if the kernel may still hold part of it
    /// (`quiescent()` is false) its buffers must never be freed.
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
        if self.quiescent() {
            self.ops.clear();
        }
    }

    /// Ends the flush in flight with `e`, once the kernel is done with it.
    fn abort(&mut self, e: Error) -> Error {
        self.drain();
        e
    }

    /// Starts a flush: every op written, each file fdatasynced, in order, as
    /// one linked chain in one submission. Returns without waiting.
    ///
    /// # Safety
    /// Every op's bytes must stay valid and unmoved until `poll` has
    /// returned `Ok(true)` or an error.
    pub unsafe fn submit(&mut self, ops: Vec<WriteOp>) -> Result<()> {
        debug_assert!(!self.busy(), "one flush in flight at a time");
        if let Some(f) = self.fault.take() {
            return Self::fail_with(&ops, f);
        }
        self.progress.clear();
        self.progress.resize(ops.len(), (0, false));
        self.ops = ops;
        self.push_chain()
    }

    /// Pushes the chain of what is left to do (everything, or what a short
    /// write or a cancelled link left) and submits it.
    fn push_chain(&mut self) -> Result<()> {
        let Some(first) = self.progress.iter().position(|p| !p.1) else {
            return Ok(());
        };
        let mut pushed = 0u32;
        {
            let mut sq = self.ring.submission();
            let mut i = first;
            while i < self.ops.len() && pushed + 2 <= RING_ENTRIES {
                let op = &self.ops[i];
                let (done, _) = self.progress[i];
                let fd = types::Fd(op.fd);
                let last = i + 1 == self.ops.len() || pushed + 4 > RING_ENTRIES;
                if done < op.len {
                    let rest = op.len - done;
                    let len = u32::try_from(rest).map_err(|_| Error::Limit {
                        what: "flush bytes for one segment",
                        value: rest as u64,
                        limit: u32::MAX as u64,
                    })?;
                    // SAFETY: in bounds of the op's buffer, which the
                    // caller of `submit` keeps alive until completion.
                    let ptr = unsafe { op.ptr.add(done) };
                    let w = opcode::Write::new(fd, ptr, len)
                        .offset(op.offset + done as u64)
                        .build()
                        .flags(squeue::Flags::IO_LINK)
                        .user_data((i as u64) << 1);
                    // SAFETY: as above; the entry is reaped before the
                    // buffer can go.
                    unsafe { sq.push(&w) }.map_err(|_| ring_full())?;
                    pushed += 1;
                }
                let mut s = opcode::Fsync::new(fd)
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
                    .user_data(((i as u64) << 1) | 1);
                if !last {
                    s = s.flags(squeue::Flags::IO_LINK);
                }
                // SAFETY: fsync references no memory.
                unsafe { sq.push(&s) }.map_err(|_| ring_full())?;
                pushed += 1;
                i += 1;
                if last {
                    break;
                }
            }
        }
        // The entries are in the submission queue now, submitted or not: a
        // later enter would submit them, so they count as outstanding.
        self.outstanding += pushed;
        loop {
            match self.ring.submit() {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let e = Error::io("io_uring submit", &self.ops[first].path, e);
                    return Err(self.abort(e));
                }
            }
        }
    }

    /// Reaps completions of the flush in flight; with `wait`, blocks until
    /// it is done. `Ok(true)` once every op is written and synced (the
    /// flush is over and its buffers may go), `Ok(false)` if not yet. An
    /// error is returned only once nothing of the flush is left in the
    /// kernel, or, if that cannot be confirmed, with `quiescent()` false.
    pub fn poll(&mut self, wait: bool) -> Result<bool> {
        loop {
            if !self.busy() {
                return Ok(true);
            }
            if self.outstanding > 0 && wait {
                // The chain completes as a whole: wait for all of it at once.
                // A signal interrupts the wait, not the flush: wait again.
                match self.enter(self.outstanding as usize) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let e = Error::io("io_uring wait", &self.ops[0].path, e);
                        return Err(self.abort(e));
                    }
                }
            }
            let mut failure = None;
            while let Some(cqe) = self.ring.completion().next() {
                self.outstanding -= 1;
                let i = (cqe.user_data() >> 1) as usize;
                let is_sync = cqe.user_data() & 1 == 1;
                let res = cqe.result();
                if res == -libc::ECANCELED {
                    // A link before it failed or was short: redone below.
                    continue;
                }
                if failure.is_some() {
                    continue;
                }
                let path = &self.ops[i].path;
                if res < 0 {
                    let what = if is_sync { "fdatasync" } else { "write" };
                    failure = Some(Error::io(what, path, io::Error::from_raw_os_error(-res)));
                } else if is_sync {
                    self.progress[i].1 = true;
                } else if res == 0 {
                    failure = Some(Error::io(
                        "write",
                        path,
                        io::Error::new(io::ErrorKind::WriteZero, "write returned 0"),
                    ));
                } else {
                    self.progress[i].0 += res as usize;
                }
            }
            if self.outstanding > 0 {
                if wait {
                    continue;
                }
                return Ok(false);
            }
            // Nothing of this flush is in the kernel any more.
            if let Some(e) = failure {
                self.ops.clear();
                return Err(e);
            }
            if self.progress.iter().all(|p| p.1) {
                self.ops.clear();
                return Ok(true);
            }
            // A short write broke the chain: submit what is left.
            self.push_chain()?;
            if !wait {
                return Ok(false);
            }
        }
    }

    /// Lands a prefix (or scattered sectors) of the flush with plain
    /// pwrite, then fails.
    fn fail_with(ops: &[WriteOp], f: Fault) -> Result<()> {
        if let (Some(seed), Some(op)) = (f.scatter, ops.first()) {
            let mut x = seed | 1;
            let end = op.offset + op.len as u64;
            let mut sector = op.offset & !511;
            while sector < end {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let from = sector.max(op.offset);
                let to = (sector + 512).min(end);
                if x & 1 == 1 {
                    let at = (from - op.offset) as usize;
                    // SAFETY: `op.ptr[at..at + len]` lies within the op.
                    let r = unsafe {
                        libc::pwrite(
                            op.fd,
                            op.ptr.add(at).cast(),
                            (to - from) as usize,
                            from as libc::off_t,
                        )
                    };
                    if r < 0 {
                        return Err(Error::io("write", &op.path, io::Error::last_os_error()));
                    }
                }
                sector += 512;
            }
            return Err(Error::io(
                "write",
                &op.path,
                io::Error::from_raw_os_error(f.errno),
            ));
        }
        let mut left = f.land_bytes;
        for op in ops {
            let n = left.min(op.len);
            if n > 0 {
                // SAFETY: `op.ptr[..n]` is readable (the caller's contract).
                let r = unsafe { libc::pwrite(op.fd, op.ptr.cast(), n, op.offset as libc::off_t) };
                if r < 0 {
                    return Err(Error::io("write", &op.path, io::Error::last_os_error()));
                }
            }
            left -= n;
            if left == 0 {
                return Err(Error::io(
                    "write",
                    &op.path,
                    io::Error::from_raw_os_error(f.errno),
                ));
            }
        }
        Err(Error::io(
            "fdatasync",
            ops.last().map_or(Path::new(""), |o| o.path.as_path()),
            io::Error::from_raw_os_error(f.errno),
        ))
    }
}

fn ring_full() -> Error {
    Error::io(
        "io_uring push",
        "",
        io::Error::other("submission queue full"),
    )
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;

    use super::*;

    fn one_write(w: &mut Writer, f: &std::fs::File, buf: &[u8]) {
        let op = WriteOp {
            fd: f.as_raw_fd(),
            ptr: buf.as_ptr(),
            len: buf.len(),
            offset: 0,
            path: PathBuf::from("test"),
        };
        // SAFETY: `buf` outlives the flush: every caller polls it to the end.
        unsafe { w.submit(vec![op]) }.unwrap();
    }

    fn contents(f: &std::fs::File, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        f.read_exact_at(&mut b, 0).unwrap();
        b
    }

    #[test]
    fn an_interrupted_wait_is_retried_and_the_flush_completes() {
        let f = tempfile::tempfile().unwrap();
        let buf = vec![0x5a; 1 << 20];
        let mut w = Writer::new().unwrap();
        w.fake_eintr = 3;
        one_write(&mut w, &f, &buf);
        assert!(w.poll(true).unwrap());
        assert_eq!(w.fake_eintr, 0, "every interrupted wait was retried");
        assert!(w.quiescent());
        assert_eq!(contents(&f, buf.len()), buf);
    }

    #[test]
    fn a_failed_wait_returns_only_once_the_kernel_is_done_with_the_flush() {
        let f = tempfile::tempfile().unwrap();
        let buf = vec![0xa5; 4 << 20];
        let mut w = Writer::new().unwrap();
        w.fake_wait_error = Some(libc::EIO);
        one_write(&mut w, &f, &buf);
        assert!(w.poll(true).is_err());
        // Nothing of the flush is in the kernel: its write ran to the end
        // before the error was returned, and the buffer may now go.
        assert!(w.quiescent());
        assert!(!w.busy());
        assert_eq!(contents(&f, buf.len()), buf);
        // The writer is usable again (the WAL poisons itself regardless).
        let buf2 = vec![1u8; 100];
        one_write(&mut w, &f, &buf2);
        assert!(w.poll(true).unwrap());
    }
}
