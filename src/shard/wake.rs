//! How the WAL's flush completions wake the shard's executor without a
//! thread and without polling: an eventfd registered with the WAL's
//! io_uring (`Wal::register_eventfd`: the kernel adds to it for every
//! completion the WAL's ring posts) and read through glommio's own ring.
//!
//! glommio 0.9 has no public "await readiness of a raw fd", but its
//! `BufferedFile` can be built over any fd (`FromRawFd`), and an 8-byte
//! read of a blocking eventfd through io_uring completes only once the
//! counter is non-zero (io_uring arms a poll on it instead of blocking a
//! worker). So the executor sleeps in its reactor while the disk syncs and
//! wakes on the WAL's completion like on any of its own I/O. Reopening the
//! eventfd by `/proc/self/fd/N` (the other route to a glommio file) fails
//! with ENXIO: anonymous inodes cannot be reopened.
//!
//! The read resets the counter: one wake may stand for several completions
//! (a flush's writes and syncs each post one), and a wake may come for a
//! completion already reaped. The waiter therefore only says "look": the
//! shard then calls `poll_flush`, which says whether the flush is done.

use std::io;
use std::os::fd::{FromRawFd, RawFd};

use glommio::io::BufferedFile;

use crate::wal::{self, Wal};

/// The WAL's completion eventfd, as a glommio file. Lives on the shard's
/// executor (glommio files are bound to the executor that made them).
pub struct FlushWake {
    file: BufferedFile,
    /// The eventfd (owned by `file`, which closes it on drop).
    fd: RawFd,
}

impl FlushWake {
    /// Creates the eventfd and registers it with `wal`'s ring. Must run on
    /// the shard's executor.
    pub fn register(wal: &Wal) -> Result<FlushWake, wal::Error> {
        // Blocking on purpose: on a non-blocking eventfd io_uring would
        // complete the read at once with EAGAIN instead of waiting for it.
        // SAFETY: plain syscall, no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(wal::Error::io(
                "eventfd",
                wal.dir(),
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `fd` is a fresh eventfd this function owns; the file takes
        // it over and closes it when dropped.
        let file = unsafe { BufferedFile::from_raw_fd(fd) };
        wal.register_eventfd(fd)?;
        Ok(FlushWake { file, fd })
    }

    /// Completes once the WAL's ring has posted a completion since the last
    /// call returned (possibly before this call).
    pub async fn wait(&self) -> io::Result<()> {
        match self.file.read_at(0, 8).await {
            Ok(r) if r.len() == 8 => Ok(()),
            Ok(r) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("eventfd read returned {} bytes, not 8", r.len()),
            )),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    /// Adds to the counter from here, so that a pending `wait` completes
    /// (at shutdown, so that nothing stays queued in glommio's ring).
    pub fn poke(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd. A
        // failure (counter at its maximum) means a wake is already due.
        let _ = unsafe { libc::write(self.fd, (&one as *const u64).cast(), 8) };
    }
}
