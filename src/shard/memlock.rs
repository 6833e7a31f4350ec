//! RLIMIT_MEMLOCK: io_uring charges the memory it pins (glommio's
//! registered I/O buffers, on older kernels its rings too) against the
//! locked-memory limit of the user. The process raises its soft limit to
//! the hard limit once, before any executor starts, so that shards do not
//! fail on a soft limit an administrator meant to be raised; it never asks
//! for more than the hard limit (that needs privileges it should not have).

use std::io;

/// The locked-memory limit after raising: `(soft, hard)` in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemlockLimit {
    pub soft: u64,
    pub hard: u64,
}

/// Raises RLIMIT_MEMLOCK's soft limit to its hard limit and returns the
/// limits in force afterwards. Idempotent; safe to call from every shard
/// start (the limit is per process).
pub fn raise_memlock() -> io::Result<MemlockLimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; lowering nothing, raising the
        // soft limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim = raised;
    }
    Ok(MemlockLimit {
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lowered_soft_limit_is_raised_back_to_the_hard_limit() {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) },
            0
        );
        let hard = lim.rlim_max;
        if hard < 8192 {
            // Nothing to raise to on this machine.
            return;
        }
        let lowered = libc::rlimit {
            // Barely below: executors other tests start meanwhile read it.
            rlim_cur: hard - 4096,
            rlim_max: hard,
        };
        assert_eq!(
            unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lowered) },
            0
        );
        let got = raise_memlock().unwrap();
        assert_eq!(got.soft, hard);
        assert_eq!(got.hard, hard);
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) },
            0
        );
        assert_eq!(lim.rlim_cur, hard);
    }
}
