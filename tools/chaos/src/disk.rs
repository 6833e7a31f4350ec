//! A member's own small file system, so the nemesis can fill it up: a
//! tmpfs mounted on the member's disk directory, in a mount namespace
//! private to this process (and the members it starts), so nothing is
//! left mounted on the machine when the harness exits, however it exits.
//!
//! Filling does not write gigabytes of ballast: the tmpfs is remounted
//! with its size cut to what it holds now plus a little slack, and a
//! ballast file takes that slack, so the next allocation fails with
//! ENOSPC at once. Freeing removes the ballast and gives the size back.
//! tmpfs ignores fsync, which is fine here: the faults this file system
//! serves are of space, and a killed member's data survives in memory
//! exactly as its process left it (what a killed process, not a power cut,
//! leaves on a real disk).

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The size a member's file system has when not full: a limit far above
/// what a run writes (tmpfs takes memory only for what is written).
const ROOMY: u64 = 64 << 30;
/// Room left between the cut size and what the member holds, taken by the
/// ballast: writes that land between the two reads of the usage fit in it.
const SLACK: u64 = 4 << 20;

/// Enters a mount namespace of this process's own, with every mount
/// private, so mounts made afterwards are seen by this process and its
/// children only and vanish with them. Call it while the process has one
/// thread. Needs root (CAP_SYS_ADMIN).
pub fn enter_private_mounts() -> io::Result<()> {
    // SAFETY: unshare and mount with valid, NUL-terminated arguments.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(io::Error::other(format!(
                "unshare(CLONE_NEWNS): {} (the full-disk nemesis needs root)",
                io::Error::last_os_error()
            )));
        }
        let root = c"/";
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(io::Error::other(format!(
                "making / private: {}",
                io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::other(format!("{}: a NUL in the path", p.display())))
}

/// One member's tmpfs.
pub struct Disk {
    mount: PathBuf,
    full: bool,
}

impl Disk {
    /// Mounts a tmpfs on `mount` (created if missing).
    pub fn mount(mount: &Path) -> io::Result<Disk> {
        fs::create_dir_all(mount)?;
        let d = Disk {
            mount: mount.to_path_buf(),
            full: false,
        };
        d.mount_tmpfs(ROOMY, false)?;
        Ok(d)
    }

    /// Where the member's data directory goes.
    pub fn data_dir(&self) -> PathBuf {
        self.mount.join("data")
    }

    fn ballast(&self) -> PathBuf {
        self.mount.join("ballast")
    }

    fn mount_tmpfs(&self, size: u64, remount: bool) -> io::Result<()> {
        let target = cpath(&self.mount)?;
        let opts = CString::new(format!("size={size},mode=0755")).expect("no NUL");
        let flags = if remount { libc::MS_REMOUNT } else { 0 };
        // SAFETY: valid, NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"corelog-chaos".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                flags,
                opts.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(io::Error::other(format!(
                "mounting a tmpfs of {size} bytes on {}: {}",
                self.mount.display(),
                io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// Bytes the file system holds now.
    pub fn used(&self) -> io::Result<u64> {
        let p = cpath(&self.mount)?;
        // SAFETY: statvfs into a zeroed struct we own.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(p.as_ptr(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((st.f_blocks - st.f_bfree) * st.f_frsize)
    }

    /// Leaves the file system no free byte: its size cut to what it holds
    /// plus `SLACK`, the slack taken by the ballast. Returns the bytes it
    /// holds, the ballast included.
    pub fn fill(&mut self) -> io::Result<u64> {
        // The member writes meanwhile: a size below what it holds by then
        // is refused, so read the usage again and retry.
        let mut tries = 0;
        while let Err(e) = self.mount_tmpfs(self.used()? + SLACK, true) {
            tries += 1;
            if tries == 20 {
                return Err(e);
            }
        }
        self.full = true;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.ballast())?;
        let chunk = vec![0xA5u8; 64 << 10];
        let mut len = chunk.len();
        loop {
            match f.write(&chunk[..len]) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    if len == 512 {
                        break;
                    }
                    len /= 2;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.used()
    }

    /// Whether `fill` left it full and `free` has not run since.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Room again: the ballast removed, the size given back.
    pub fn free(&mut self) -> io::Result<()> {
        if !self.full {
            return Ok(());
        }
        match fs::remove_file(self.ballast()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.mount_tmpfs(ROOMY, true)?;
        self.full = false;
        Ok(())
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if let Ok(p) = cpath(&self.mount) {
            // SAFETY: a valid path; a lazy unmount of our own mount.
            unsafe {
                libc::umount2(p.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
}
