//! The fault proxy on a real loopback echo server: each fault does what it
//! says, and healing resumes the stream in order.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use corelog_chaos::proxy::{Fault, Proxy};

/// An echo server on a free port; runs until the test process ends.
fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn connect(p: &Proxy) -> TcpStream {
    let s = TcpStream::connect(p.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).unwrap();
    got
}

#[test]
fn pass_forwards_both_ways() {
    let p = Proxy::start(echo_server()).unwrap();
    let mut s = connect(&p);
    assert_eq!(round_trip(&mut s, b"hello"), b"hello");
    // Counted just after each write: the echo may arrive first.
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.forwarded() < 10 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(p.forwarded(), 10);
    assert_eq!(p.connections(), 1);
}

#[test]
fn a_blackhole_holds_bytes_and_healing_delivers_them_in_order() {
    let p = Proxy::start(echo_server()).unwrap();
    let mut s = connect(&p);
    assert_eq!(round_trip(&mut s, b"a"), b"a");
    p.set(Fault::Blackhole);
    s.write_all(b"bcd").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut one = [0u8; 1];
    let e = s.read(&mut one).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    // A connection opened during the blackhole waits too.
    let mut late = connect(&p);
    late.write_all(b"x").unwrap();
    p.set(Fault::Pass);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = [0u8; 3];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"bcd");
    late.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"x");
}

#[test]
fn a_reset_closes_connections_and_refuses_new_ones_until_healed() {
    let p = Proxy::start(echo_server()).unwrap();
    let mut s = connect(&p);
    assert_eq!(round_trip(&mut s, b"a"), b"a");
    p.set(Fault::Reset);
    let mut buf = [0u8; 1];
    // Closed: end of stream or an error, never an answer.
    let _ = s.write_all(b"b");
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    let mut refused = connect(&p);
    let _ = refused.write_all(b"c");
    assert!(matches!(refused.read(&mut buf), Ok(0) | Err(_)));
    p.set(Fault::Pass);
    let mut again = connect(&p);
    assert_eq!(round_trip(&mut again, b"d"), b"d");
}

#[test]
fn a_delay_holds_each_chunk_at_least_that_long_each_way() {
    let p = Proxy::start(echo_server()).unwrap();
    let mut s = connect(&p);
    p.set(Fault::Delay(Duration::from_millis(100)));
    let t = Instant::now();
    assert_eq!(round_trip(&mut s, b"late"), b"late");
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn a_throttle_caps_the_byte_rate() {
    let p = Proxy::start(echo_server()).unwrap();
    let mut s = connect(&p);
    p.set(Fault::Throttle(100_000));
    let msg = vec![7u8; 20_000];
    let t = Instant::now();
    assert_eq!(round_trip(&mut s, &msg), msg);
    // 20 kB each way at 100 kB/s: at least 0.4 s.
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
}
