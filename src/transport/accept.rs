//! What every listener of a shard does the same way (the peer port, the
//! client ports, the metrics ports): bind a std listener and hand it to
//! glommio, then accept connections until told to stop, pausing after a
//! failed accept rather than spinning on it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::Duration;

use futures_lite::future::or;
use glommio::net::{TcpListener, TcpStream};

/// Pause after a failed accept (out of descriptors or memory: retrying at
/// once would only fail again).
pub(crate) const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Binds `addr` with std's listener (SO_REUSEADDR, so a restart binds over
/// TIME_WAIT connections; not glommio's bind, which sets SO_REUSEPORT: a
/// second process configured with the same port would then bind too and
/// silently take half the connections) and hands it to glommio. Returns
/// the listener and the address it is bound to.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    let local = std_listener.local_addr()?;
    // SAFETY: a bound, listening socket whose fd we hand over.
    let listener = unsafe { TcpListener::from_raw_fd(std_listener.into_raw_fd()) };
    Ok((listener, local))
}

/// The next accepted connection, or `None` once `stop()` resolves. A
/// failed accept is handed to `failed` (to log it) and retried after
/// `ACCEPT_RETRY`.
pub(crate) async fn next<S, F>(
    listener: &TcpListener,
    stop: S,
    mut failed: impl FnMut(&io::Error),
) -> Option<TcpStream>
where
    S: Fn() -> F,
    F: Future<Output = ()>,
{
    loop {
        let accepted = or(async { Some(listener.accept().await) }, async {
            stop().await;
            None
        })
        .await;
        match accepted {
            None => return None,
            Some(Ok(s)) => return Some(s),
            Some(Err(e)) => {
                failed(&io::Error::from(e));
                let stopped = or(
                    async {
                        glommio::timer::sleep(ACCEPT_RETRY).await;
                        false
                    },
                    async {
                        stop().await;
                        true
                    },
                )
                .await;
                if stopped {
                    return None;
                }
            }
        }
    }
}
