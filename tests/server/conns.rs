//! A connection's life on the server: what ends it (the client going
//! away with a tail open, idleness), what bounds it (the shard's bytes
//! across connections), tail answers within a frame. In process, one
//! member.

use std::net::TcpStream;
use std::time::Duration;

use super::support::*;

/// A tail on a group where nothing is appended: when the client closes
/// its connection, the server ends the tail and the connection at once,
/// not when (if ever) a record arrives.
#[test]
fn a_tail_on_an_idle_group_ends_with_its_connection() {
    let _g = serial();
    let (_dir, srv) = solo_server(1, 1, |_| {});
    let mut s = TcpStream::connect(srv.client_addrs()[0]).unwrap();
    raw_send(&mut s, 1, &tail_req(0, 0));
    assert!(
        eventually(|| srv.connections() == vec![1]),
        "{:?}",
        srv.connections()
    );
    std::thread::sleep(Duration::from_millis(100));
    drop(s);
    assert!(
        eventually(|| srv.connections() == vec![0]),
        "the connection (and its tail) outlived the client: {:?}",
        srv.connections()
    );
    srv.stop(Duration::from_secs(1)).unwrap();
}
