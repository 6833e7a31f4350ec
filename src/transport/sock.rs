//! The socket calls glommio's `TcpStream` does not offer, on its raw fd:
//! a vectored write (`sendmsg` of many `iovec`s: the frame's header slices
//! and the entries' own buffers, never copied) and a read straight into a
//! `BytesMut`'s spare capacity (so a frame's payload is a view of the
//! receive buffer, and the buffer is never zero-filled first).
//!
//! Both are non-blocking calls (`MSG_DONTWAIT`: glommio's sockets may be
//! in blocking mode) that fall back on glommio's readiness when the socket
//! is not ready: for writing, glommio's own `write` of the first pending
//! slice (it sleeps until the socket is writable, then writes part of that
//! slice: progress, not a copy); for reading, glommio's `peek` of one byte
//! (it sleeps until bytes or the end of the stream arrive). The shard's
//! thread never blocks in a socket call.
//!
//! glommio's fallback write does not pass `MSG_NOSIGNAL`; a Rust program
//! ignores SIGPIPE from the start (std sets it before `main`), so a closed
//! peer is an `EPIPE` error there too, not a signal.

use std::io;
use std::os::fd::AsRawFd;

use bytes::BytesMut;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use super::codec::MAX_IOV;

/// Writes every byte `iov` points to, in order, with `sendmsg` calls of at
/// most [`MAX_IOV`] slices, resuming after partial writes. Returns the
/// number of write calls that moved bytes.
///
/// The buffers behind `iov` must stay alive and unchanged until this
/// returns or is dropped (the caller owns them: the encoders of the frames
/// being written). `iov` is consumed: its entries are advanced in place.
pub(crate) async fn write_all_vectored(
    stream: &mut TcpStream,
    iov: &mut [libc::iovec],
) -> io::Result<u64> {
    let fd = stream.as_raw_fd();
    let mut start = 0;
    let mut calls = 0u64;
    while start < iov.len() {
        if iov[start].iov_len == 0 {
            start += 1;
            continue;
        }
        let end = (start + MAX_IOV).min(iov.len());
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = iov[start..end].as_mut_ptr();
        hdr.msg_iovlen = end - start;
        // SAFETY: every iovec points into a live buffer of at least
        // `iov_len` bytes (the caller's contract); the kernel only reads
        // them. MSG_NOSIGNAL: a closed peer is an EPIPE error, not a signal.
        let n = unsafe { libc::sendmsg(fd, &hdr, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n >= 0 {
            calls += 1;
            advance(iov, &mut start, n as usize);
            continue;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => {
                // SAFETY: as above; the slice lives as long as this call.
                let first = unsafe {
                    std::slice::from_raw_parts(iov[start].iov_base as *const u8, iov[start].iov_len)
                };
                // glommio waits for the socket to take bytes, then sends
                // some of this slice.
                let n = stream.write(first).await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "peer socket accepted no bytes",
                    ));
                }
                calls += 1;
                advance(iov, &mut start, n);
            }
            _ => return Err(err),
        }
    }
    Ok(calls)
}

/// Skips `n` written bytes: whole iovecs, then the front of a partial one.
fn advance(iov: &mut [libc::iovec], start: &mut usize, mut n: usize) {
    while n > 0 && *start < iov.len() {
        let v = &mut iov[*start];
        if n >= v.iov_len {
            n -= v.iov_len;
            v.iov_len = 0;
            *start += 1;
        } else {
            // SAFETY: n < iov_len: the pointer stays inside the buffer.
            v.iov_base = unsafe { (v.iov_base as *mut u8).add(n) } as *mut libc::c_void;
            v.iov_len -= n;
            n = 0;
        }
    }
}

/// Reads what the socket has (at least one byte, or 0 at the end of the
/// stream) into `buf`'s spare capacity, reserving `chunk` more bytes first
/// when fewer than `min_room` are free. Sleeps until bytes arrive.
pub(crate) async fn read_some(
    stream: &TcpStream,
    buf: &mut BytesMut,
    min_room: usize,
    chunk: usize,
) -> io::Result<usize> {
    let fd = stream.as_raw_fd();
    loop {
        if buf.capacity() - buf.len() < min_room {
            buf.reserve(chunk.max(min_room));
        }
        let spare = buf.spare_capacity_mut();
        // SAFETY: the kernel writes at most `spare.len()` bytes into the
        // spare capacity, which `BytesMut` owns and we hold `&mut` of.
        let n = unsafe {
            libc::recv(
                fd,
                spare.as_mut_ptr().cast::<libc::c_void>(),
                spare.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            // SAFETY: the kernel initialised these `n` bytes.
            unsafe { buf.set_len(buf.len() + n as usize) };
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => wait_readable(stream).await?,
            _ => return Err(err),
        }
    }
}

/// Sleeps until the socket has bytes to read or its peer closed it.
pub(crate) async fn wait_readable(stream: &TcpStream) -> io::Result<()> {
    let mut one = [0u8; 1];
    stream.peek(&mut one).await.map_err(io::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iovecs(bufs: &[&[u8]]) -> Vec<libc::iovec> {
        bufs.iter()
            .map(|b| libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            })
            .collect()
    }

    #[test]
    fn advance_skips_whole_and_partial_slices() {
        let (a, b, c) = (b"abc".as_slice(), b"".as_slice(), b"defgh".as_slice());
        let mut iov = iovecs(&[a, b, c]);
        let mut start = 0;
        advance(&mut iov, &mut start, 2);
        assert_eq!((start, iov[0].iov_len), (0, 1));
        assert_eq!(iov[0].iov_base as usize, a.as_ptr() as usize + 2);
        advance(&mut iov, &mut start, 3);
        // "c" and the empty slice done, two bytes into "defgh".
        assert_eq!(start, 2);
        assert_eq!(iov[2].iov_len, 3);
        assert_eq!(iov[2].iov_base as usize, c.as_ptr() as usize + 2);
        advance(&mut iov, &mut start, 3);
        assert_eq!(start, 3);
    }
}
