//! The flush: one io_uring submission carrying every write of the flush and
//! its fdatasync, linked so that the kernel runs them in order and each
//! fdatasync runs only if the writes before it completed in full. A flush
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
use std::path::Path;

use io_uring::{IoUring, opcode, squeue, types};

use super::error::{Error, Result};

/// Submission queue size: two entries (write, fdatasync) per segment a
/// flush touches; a flush touching more is split into several rounds.
const RING_ENTRIES: u32 = 32;

/// One write of a flush: `buf` goes to `offset` of the file `fd`.
pub struct WriteOp<'a> {
    pub fd: RawFd,
    pub buf: &'a [u8],
    pub offset: u64,
    pub path: &'a Path,
}

/// A failure to inject into the next flush (tests and crash experiments):
/// the first `land_bytes` bytes of the flush reach the file, then the flush
/// fails with `errno` (ENOSPC imitates a full disk, EIO a dying one).
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub land_bytes: usize,
    pub errno: i32,
}

/// Owns the ring. Reused for every flush: no per-flush allocation.
pub struct Writer {
    ring: IoUring,
    /// Bytes written so far and whether synced, per op of the current flush.
    progress: Vec<(usize, bool)>,
    fault: Option<Fault>,
}

impl Writer {
    pub fn new() -> io::Result<Self> {
        Ok(Writer {
            ring: IoUring::new(RING_ENTRIES)?,
            progress: Vec::with_capacity(4),
            fault: None,
        })
    }

    /// Arms a fault for the next flush.
    pub fn inject(&mut self, f: Fault) {
        self.fault = Some(f);
    }

    /// Writes every op and fdatasyncs each file, in order. Returns only when
    /// all are durable, or the first error.
    pub fn write_and_sync(&mut self, ops: &[WriteOp<'_>]) -> Result<()> {
        if let Some(f) = self.fault.take() {
            return Self::fail_with(ops, f);
        }
        self.progress.clear();
        self.progress.resize(ops.len(), (0, false));
        loop {
            let first = match self.progress.iter().position(|p| !p.1) {
                Some(i) => i,
                None => return Ok(()),
            };
            let mut pushed = 0u32;
            {
                let mut sq = self.ring.submission();
                let mut i = first;
                while i < ops.len() && pushed + 2 <= RING_ENTRIES {
                    let op = &ops[i];
                    let (done, _) = self.progress[i];
                    let rest = &op.buf[done..];
                    let fd = types::Fd(op.fd);
                    let last = i + 1 == ops.len() || pushed + 4 > RING_ENTRIES;
                    if !rest.is_empty() {
                        let len = u32::try_from(rest.len()).map_err(|_| Error::Limit {
                            what: "flush bytes for one segment",
                            value: rest.len() as u64,
                            limit: u32::MAX as u64,
                        })?;
                        let w = opcode::Write::new(fd, rest.as_ptr(), len)
                            .offset(op.offset + done as u64)
                            .build()
                            .flags(squeue::Flags::IO_LINK)
                            .user_data((i as u64) << 1);
                        // SAFETY: `rest` lives in `ops`, borrowed until this
                        // function returns, and we wait for every completion
                        // before returning.
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
            self.ring
                .submit_and_wait(pushed as usize)
                .map_err(|e| Error::io("io_uring submit", ops[first].path, e))?;
            let mut reaped = 0;
            while reaped < pushed {
                let Some(cqe) = self.ring.completion().next() else {
                    // submit_and_wait returned early (a signal): wait again.
                    self.ring
                        .submit_and_wait(1)
                        .map_err(|e| Error::io("io_uring wait", ops[first].path, e))?;
                    continue;
                };
                reaped += 1;
                let i = (cqe.user_data() >> 1) as usize;
                let is_sync = cqe.user_data() & 1 == 1;
                let res = cqe.result();
                let op = &ops[i];
                if res == -libc::ECANCELED {
                    // A link before it failed or was short: redone next round.
                    continue;
                }
                if res < 0 {
                    let what = if is_sync { "fdatasync" } else { "write" };
                    return Err(Error::io(what, op.path, io::Error::from_raw_os_error(-res)));
                }
                if is_sync {
                    self.progress[i].1 = true;
                } else if res == 0 {
                    return Err(Error::io(
                        "write",
                        op.path,
                        io::Error::new(io::ErrorKind::WriteZero, "write returned 0"),
                    ));
                } else {
                    self.progress[i].0 += res as usize;
                }
            }
        }
    }

    /// Lands a prefix of the flush with plain pwrite, then fails.
    fn fail_with(ops: &[WriteOp<'_>], f: Fault) -> Result<()> {
        let mut left = f.land_bytes;
        for op in ops {
            let n = left.min(op.buf.len());
            if n > 0 {
                // SAFETY: `op.buf[..n]` is a valid readable slice.
                let r = unsafe {
                    libc::pwrite(op.fd, op.buf.as_ptr().cast(), n, op.offset as libc::off_t)
                };
                if r < 0 {
                    return Err(Error::io("write", op.path, io::Error::last_os_error()));
                }
            }
            left -= n;
            if left == 0 {
                return Err(Error::io(
                    "write",
                    op.path,
                    io::Error::from_raw_os_error(f.errno),
                ));
            }
        }
        Err(Error::io(
            "fdatasync",
            ops.last().map(|o| o.path).unwrap_or(Path::new("")),
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
