//! Randomness from the operating system, for what must differ between
//! processes and lives (each group's election jitter seed, the transport's
//! reconnect jitter): `getrandom(2)`, or `/dev/urandom` where the call is
//! missing. The core itself stays deterministic given its seed.

use std::io::{self, Read};

/// Eight random bytes from the OS; never 0 (the core reads a seed of 0 as
/// "derive from the node id", which is exactly what this replaces).
pub fn os_random_u64() -> io::Result<u64> {
    let mut b = [0u8; 8];
    fill(&mut b)?;
    Ok(u64::from_le_bytes(b).max(1))
}

pub(crate) fn fill(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            done += n as usize;
            continue;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ENOSYS) => return urandom(&mut buf[done..]),
            _ => return Err(e),
        }
    }
    Ok(())
}

fn urandom(buf: &mut [u8]) -> io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_between_calls_and_are_never_zero() {
        let a: Vec<u64> = (0..8).map(|_| os_random_u64().unwrap()).collect();
        assert!(a.iter().all(|&x| x != 0));
        let mut d = a.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), a.len(), "{a:?}");
        let mut b = [0u8; 16];
        urandom(&mut b).unwrap();
        assert_ne!(b, [0u8; 16]);
    }
}
