//! glommio registers its I/O memory with io_uring, which counts against
//! RLIMIT_MEMLOCK: raise the soft limit to the hard one before any
//! executor starts. (The shard runtime has its own copy for the server;
//! this one serves the peer-network tests and bench.)

/// Raises RLIMIT_MEMLOCK's soft limit to its hard limit.
pub fn raise_memlock_limit() -> std::io::Result<()> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if r.rlim_cur < r.rlim_max {
        r.rlim_cur = r.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &r) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
