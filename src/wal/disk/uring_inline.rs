//! The production flush run inline: for each write of the flush, `pwrite`
//! then `fdatasync` of its file, on the calling thread, stopping at the
//! first failure. The same steps in the same order as the linked io_uring
//! chain of uring_flush.rs, and the same outcome (`Done` or `Failed` with
//! the buffers); a short write is continued from where it stopped and a
//! call interrupted by a signal (EINTR) is retried, as there.
//!
//! Why it exists: an fdatasync cannot run without blocking, so io_uring
//! hands the chain's fsync to an io-wq worker thread (one wakeup) whose
//! completion then wakes the waiting thread (a second): on a one-record
//! flush that is the whole gap to a plain pwrite + fdatasync loop
//! (docs/benchmarks.md, "Where a single-record flush's time goes"). A
//! shard with nothing else to do while a small flush runs loses nothing by
//! blocking, and saves both wakeups.
//!
//! Why `pwrite` and `fdatasync`, not `pwritev2` with `RWF_DSYNC`: each
//! write of a flush is one contiguous buffer (one segment's part, its
//! batch header and end marker included) and the writes go to different
//! files, so a vectored write has nothing to gather; and `RWF_DSYNC` runs
//! the same data sync inside the write (measured at 97–101% of pwrite +
//! fdatasync, docs/benchmarks.md) while a failed sync would then come back
//! as a failed write, which the WAL reports differently.
//!
//! What it must never do: run while a submitted flush is in flight (the
//! caller's `run_inline` asserts it), or leave any part of the flush
//! outstanding when it returns: nothing here is asynchronous, so the
//! buffers are free again the moment it returns.

use std::io;
use std::os::fd::RawFd;

use super::uring::UringFile;
use super::uring_flush::UringFlusher;
use super::{FlushError, FlushPoll, FlushWrite};

/// Test hooks: how many `pwrite` and `fdatasync` calls fail with EINTR
/// before the kernel is asked (each in place of the syscall's result, so
/// that the retry tested is the one real errors take), a cap on every
/// `pwrite`'s length (to force short writes), an errno for the next
/// `fdatasync`, and what ran, in order.
#[cfg(test)]
#[derive(Debug, Default)]
pub(super) struct InlineHooks {
    pub pwrite_eintr: u32,
    pub sync_eintr: u32,
    pub max_write: Option<usize>,
    pub sync_errno: Option<i32>,
    pub calls: Vec<(&'static str, u64, usize)>,
}

/// An injected `Fault` (without `scatter`) as an inline flush plays it: its
/// syscalls run as asked until `left` bytes have been written, then the
/// next `pwrite`, or the `fdatasync` right after the last of those bytes,
/// fails with `errno` in place of the kernel's answer. Why not the ring's
/// `fail_with`: so that a fault test of the inline path goes through the
/// same error handling a real EIO or ENOSPC does (the failing step named,
/// the buffers handed back, nothing run after it).
#[derive(Debug, Clone, Copy)]
pub(super) struct ArmedFault {
    left: usize,
    errno: i32,
}

fn failed(write: usize, sync: bool, error: io::Error) -> FlushError {
    FlushError { write, sync, error }
}

impl UringFlusher {
    /// Runs the flush on this thread (the caller checked nothing is in
    /// flight). An injected `Fault` fires here as it would in the ring.
    pub(super) fn run_inline_now(
        &mut self,
        writes: Vec<FlushWrite<UringFile>>,
    ) -> FlushPoll<UringFile> {
        match self.take_fault() {
            Some(f) if f.scatter.is_some() => {
                // Sectors landing out of order: no syscall sequence does
                // that, so it is imitated as in the ring.
                let error = Self::fail_with(&writes, f);
                return FlushPoll::Failed { error, writes };
            }
            Some(f) => {
                self.inline_fault = Some(ArmedFault {
                    left: f.land_bytes,
                    errno: f.errno,
                });
            }
            None => {}
        }
        let outcome = self.run_writes(writes);
        self.inline_fault = None;
        outcome
    }

    fn run_writes(&mut self, writes: Vec<FlushWrite<UringFile>>) -> FlushPoll<UringFile> {
        for (i, w) in writes.iter().enumerate() {
            let fd = w.file.fd();
            if let Err(e) = self.pwrite_all(fd, &w.buf, w.offset) {
                return FlushPoll::Failed {
                    error: failed(i, false, e),
                    writes,
                };
            }
            if self.no_fsync {
                continue;
            }
            if let Err(e) = self.fdatasync(fd) {
                return FlushPoll::Failed {
                    error: failed(i, true, e),
                    writes,
                };
            }
        }
        FlushPoll::Done(writes)
    }

    /// All of `buf` at `offset`: a short write goes on from where it
    /// stopped, an interrupted one is retried, a write of 0 bytes is an
    /// error (the disk took nothing and would take nothing again).
    fn pwrite_all(&mut self, fd: RawFd, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset
                .checked_add(done as u64)
                .and_then(|o| libc::off_t::try_from(o).ok())
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EFBIG))?;
            let rest = &buf[done..];
            match self.pwrite_once(fd, rest, at) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "pwrite returned 0",
                    ));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn pwrite_once(&mut self, fd: RawFd, buf: &[u8], at: libc::off_t) -> io::Result<usize> {
        let mut len = buf.len();
        if let Some(f) = self.inline_fault.as_mut() {
            if f.left == 0 {
                let errno = f.errno;
                self.inline_fault = None;
                return Err(io::Error::from_raw_os_error(errno));
            }
            len = len.min(f.left);
        }
        #[cfg(test)]
        {
            let h = &mut self.inline_hooks;
            if h.pwrite_eintr > 0 {
                h.pwrite_eintr -= 1;
                return Err(io::Error::from_raw_os_error(libc::EINTR));
            }
            len = h.max_write.map_or(len, |m| len.min(m));
            h.calls.push(("pwrite", at as u64, len));
        }
        // SAFETY: `buf` is a live slice of at least `len` bytes for the
        // whole call; the kernel only reads it.
        let n = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), len, at) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if let Some(f) = self.inline_fault.as_mut() {
            f.left -= n.min(f.left);
        }
        Ok(n)
    }

    /// fdatasync, retried while interrupted.
    fn fdatasync(&mut self, fd: RawFd) -> io::Result<()> {
        loop {
            match self.fdatasync_once(fd) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    fn fdatasync_once(&mut self, fd: RawFd) -> io::Result<()> {
        if let Some(f) = self.inline_fault
            && f.left == 0
        {
            self.inline_fault = None;
            return Err(io::Error::from_raw_os_error(f.errno));
        }
        #[cfg(test)]
        {
            let h = &mut self.inline_hooks;
            if h.sync_eintr > 0 {
                h.sync_eintr -= 1;
                return Err(io::Error::from_raw_os_error(libc::EINTR));
            }
            h.calls.push(("fdatasync", 0, 0));
            if let Some(e) = h.sync_errno.take() {
                return Err(io::Error::from_raw_os_error(e));
            }
        }
        // SAFETY: a plain syscall on a descriptor the flush's `UringFile`
        // keeps open; it touches no memory of ours.
        if unsafe { libc::fdatasync(fd) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::uring_flush::Fault;
    use super::super::{Disk, Flusher, UringDisk};
    use super::*;

    fn two_files() -> (tempfile::TempDir, UringFile, UringFile) {
        let dir = tempfile::tempdir().unwrap();
        let disk = UringDisk::open(dir.path(), false).unwrap();
        let a = disk.create("a").unwrap();
        let b = disk.create("b").unwrap();
        (dir, a, b)
    }

    fn contents(f: &UringFile) -> Vec<u8> {
        std::fs::read(f.path()).unwrap()
    }

    fn writes(a: &UringFile, b: &UringFile) -> Vec<FlushWrite<UringFile>> {
        vec![
            FlushWrite {
                file: a.clone(),
                offset: 100,
                buf: (0..5000u32).map(|k| k as u8 | 1).collect(),
            },
            FlushWrite {
                file: b.clone(),
                offset: 7,
                buf: vec![0xab; 3000],
            },
        ]
    }

    fn expect_at(f: &UringFile, offset: usize, want: &[u8]) {
        let got = contents(f);
        assert_eq!(&got[offset..offset + want.len()], want);
        assert!(got[..offset].iter().all(|&b| b == 0));
    }

    #[test]
    fn unsafe_no_fsync_writes_without_syncing() {
        let (_d, a, b) = two_files();
        let mut fl = UringFlusher::new().unwrap();
        fl.no_fsync = true;
        let ws = writes(&a, &b);
        let want: Vec<Vec<u8>> = ws.iter().map(|w| w.buf.clone()).collect();
        assert!(matches!(fl.run_inline(ws), FlushPoll::Done(_)));
        expect_at(&a, 100, &want[0]);
        expect_at(&b, 7, &want[1]);
        let steps: Vec<&str> = fl.inline_hooks.calls.iter().map(|c| c.0).collect();
        assert_eq!(steps, ["pwrite", "pwrite"]);
    }

    #[test]
    fn each_write_is_written_then_synced_in_order_and_handed_back() {
        let (_d, a, b) = two_files();
        let mut fl = UringFlusher::new().unwrap();
        let ws = writes(&a, &b);
        let want: Vec<Vec<u8>> = ws.iter().map(|w| w.buf.clone()).collect();
        match fl.run_inline(ws) {
            FlushPoll::Done(back) => {
                assert_eq!(back.len(), 2);
                assert_eq!(back[0].buf, want[0], "buffers come back intact");
                assert_eq!(back[1].buf, want[1]);
            }
            other => panic!("expected Done, got {other:?}"),
        }
        expect_at(&a, 100, &want[0]);
        expect_at(&b, 7, &want[1]);
        let steps: Vec<&str> = fl.inline_hooks.calls.iter().map(|c| c.0).collect();
        assert_eq!(steps, ["pwrite", "fdatasync", "pwrite", "fdatasync"]);
        assert!(!fl.busy());
    }

    #[test]
    fn short_writes_are_continued_and_interrupted_calls_retried() {
        let (_d, a, b) = two_files();
        let mut fl = UringFlusher::new().unwrap();
        fl.inline_hooks.max_write = Some(1024);
        fl.inline_hooks.pwrite_eintr = 3;
        let ws = writes(&a, &b);
        let want: Vec<Vec<u8>> = ws.iter().map(|w| w.buf.clone()).collect();
        assert!(matches!(fl.run_inline(ws), FlushPoll::Done(_)));
        assert_eq!(
            fl.inline_hooks.pwrite_eintr, 0,
            "every interrupted call was retried"
        );
        expect_at(&a, 100, &want[0]);
        expect_at(&b, 7, &want[1]);
        // 5000 bytes in five pieces, each at the right offset.
        let pieces: Vec<(u64, usize)> = fl
            .inline_hooks
            .calls
            .iter()
            .take_while(|c| c.0 == "pwrite")
            .map(|c| (c.1, c.2))
            .collect();
        assert_eq!(
            pieces,
            [
                (100, 1024),
                (1124, 1024),
                (2148, 1024),
                (3172, 1024),
                (4196, 904)
            ]
        );
    }

    /// Runs `writes(a, b)` inline with the hooks set by `arm` and checks
    /// that the flush completed with both files written and each synced
    /// once (an interrupted call is not recorded: it never reached the
    /// kernel).
    fn completes_despite(arm: impl FnOnce(&mut InlineHooks)) -> InlineHooks {
        let (_d, a, b) = two_files();
        let mut fl = UringFlusher::new().unwrap();
        arm(&mut fl.inline_hooks);
        let ws = writes(&a, &b);
        let want: Vec<Vec<u8>> = ws.iter().map(|w| w.buf.clone()).collect();
        match fl.run_inline(ws) {
            FlushPoll::Done(_) => {}
            other => panic!("an interrupted call failed the flush: {other:?}"),
        }
        expect_at(&a, 100, &want[0]);
        expect_at(&b, 7, &want[1]);
        let steps: Vec<&str> = fl.inline_hooks.calls.iter().map(|c| c.0).collect();
        assert_eq!(steps, ["pwrite", "fdatasync", "pwrite", "fdatasync"]);
        std::mem::take(&mut fl.inline_hooks)
    }

    #[test]
    fn an_interrupted_pwrite_is_retried() {
        let h = completes_despite(|h| h.pwrite_eintr = 2);
        assert_eq!(h.pwrite_eintr, 0, "both interruptions were met");
    }

    #[test]
    fn an_interrupted_fdatasync_is_retried() {
        let h = completes_despite(|h| h.sync_eintr = 2);
        assert_eq!(h.sync_eintr, 0, "both interruptions were met");
    }

    #[test]
    fn a_failed_sync_stops_the_flush_there_and_names_the_write() {
        let (_d, a, b) = two_files();
        let mut fl = UringFlusher::new().unwrap();
        fl.inline_hooks.sync_errno = Some(libc::EIO);
        match fl.run_inline(writes(&a, &b)) {
            FlushPoll::Failed { error, writes } => {
                assert_eq!((error.write, error.sync), (0, true));
                assert_eq!(error.error.raw_os_error(), Some(libc::EIO));
                assert_eq!(writes.len(), 2, "the buffers come back");
                assert_eq!(writes[1].buf.len(), 3000);
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        assert!(contents(&b).is_empty(), "nothing runs after a failed step");
    }

    #[test]
    fn a_write_the_kernel_refuses_fails_the_flush_as_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let disk = UringDisk::open(dir.path(), false).unwrap();
        drop(disk.create("ro").unwrap());
        let ro = disk.open("ro", false).unwrap();
        let mut fl = UringFlusher::new().unwrap();
        let ws = vec![FlushWrite {
            file: ro,
            offset: 0,
            buf: vec![1; 10],
        }];
        match fl.run_inline(ws) {
            FlushPoll::Failed { error, .. } => {
                assert_eq!((error.write, error.sync), (0, false));
                assert_eq!(error.error.raw_os_error(), Some(libc::EBADF));
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    /// The fault is played out by the syscalls themselves: the bytes before
    /// it are real pwrites (the second write cut short at the fault), and
    /// the failing step is the call that would have come next.
    #[test]
    fn an_injected_fault_fires_inline_through_the_syscalls() {
        let (_d, a, b) = two_files();
        let mut fl = UringFlusher::new().unwrap();
        fl.inject(Fault {
            land_bytes: 5000 + 1000,
            errno: libc::ENOSPC,
            scatter: None,
        });
        match fl.run_inline(writes(&a, &b)) {
            FlushPoll::Failed { error, .. } => {
                assert_eq!((error.write, error.sync), (1, false));
                assert_eq!(error.error.raw_os_error(), Some(libc::ENOSPC));
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        assert_eq!(contents(&b).len(), 7 + 1000, "a prefix of the flush landed");
        assert_eq!(
            fl.inline_hooks.calls,
            [
                ("pwrite", 100, 5000),
                ("fdatasync", 0, 0),
                ("pwrite", 7, 1000)
            ],
            "the real steps up to the fault"
        );
        assert!(fl.inline_fault.is_none(), "disarmed once fired");
        fl.inline_hooks.calls.clear();
        // Fired once: the next flush runs.
        assert!(matches!(fl.run_inline(writes(&a, &b)), FlushPoll::Done(_)));
    }

    /// A fault at the flush's last byte fails the last fdatasync (as a
    /// sync, naming that write); one at 0 bytes fails the first pwrite.
    #[test]
    fn an_injected_eio_fails_the_step_after_its_bytes() {
        for (land, want) in [(5000 + 3000, (1, true)), (5000, (0, true)), (0, (0, false))] {
            let (_d, a, b) = two_files();
            let mut fl = UringFlusher::new().unwrap();
            fl.inject(Fault {
                land_bytes: land,
                errno: libc::EIO,
                scatter: None,
            });
            match fl.run_inline(writes(&a, &b)) {
                FlushPoll::Failed { error, writes } => {
                    assert_eq!((error.write, error.sync), want, "land {land}");
                    assert_eq!(error.error.raw_os_error(), Some(libc::EIO));
                    assert_eq!(writes.len(), 2, "the buffers come back");
                }
                other => panic!("land {land}: expected Failed, got {other:?}"),
            }
            let landed =
                contents(&a).len().saturating_sub(100) + contents(&b).len().saturating_sub(7);
            assert_eq!(landed, land, "exactly the bytes before the fault landed");
        }
    }

    #[test]
    #[should_panic(expected = "a flush is in flight")]
    fn running_inline_behind_a_flush_in_flight_is_refused() {
        let (_d, a, b) = two_files();
        let mut fl = UringFlusher::new().unwrap();
        fl.submit(writes(&a, &b));
        let _ = fl.run_inline(writes(&a, &b));
    }
}
