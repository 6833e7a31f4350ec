//! The directory lock: at most one read-write `Wal` per directory, across
//! threads and processes, and no read-only inspection alongside it. An
//! advisory `flock` on `<dir>/LOCK` (per open file description, so two
//! opens in one process conflict too), released when the `Wal` is dropped
//! or its process dies. A read-write holder writes its process id into the
//! file so that a refused open can name it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::wal::error::{Error, Result};

const LOCK_FILE: &str = "LOCK";

/// A held lock; dropping it releases the lock.
pub struct DirLock {
    file: File,
    exclusive: bool,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // No pid left behind for a later refusal to name wrongly; the
        // lock itself goes with the descriptor.
        if self.exclusive {
            let _ = self.file.set_len(0);
        }
    }
}

/// Takes the lock of `dir`: exclusive for a read-write open, shared for a
/// read-only one (which takes none if no read-write open ever created the
/// lock file, as it must not create files). Never waits.
pub fn acquire(dir: &Path, read_only: bool) -> Result<Option<DirLock>> {
    let path = dir.join(LOCK_FILE);
    let file = if read_only {
        match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open lock file", &path, e)),
        }
    } else {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open lock file", &path, e))?
    };
    let how = if read_only {
        libc::LOCK_SH
    } else {
        libc::LOCK_EX
    };
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), how | libc::LOCK_NB) } == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => {
                return Err(Error::Locked {
                    dir: dir.to_path_buf(),
                    holder: holder(&path),
                });
            }
            _ => return Err(Error::io("lock directory", &path, e)),
        }
    }
    if !read_only {
        let mut f = &file;
        f.set_len(0)
            .and_then(|()| f.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(|e| Error::io("write lock file", &path, e))?;
    }
    Ok(Some(DirLock {
        file,
        exclusive: !read_only,
    }))
}

/// The process id in the lock file, if it holds one.
fn holder(path: &Path) -> Option<u32> {
    let mut s = String::new();
    File::open(path)
        .ok()?
        .take(32)
        .read_to_string(&mut s)
        .ok()?;
    s.trim().parse().ok()
}
