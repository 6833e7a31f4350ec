//! Exactly-once producers under use the review found unsafe: one
//! `Client` appending to one group from many threads at once, and a
//! producer the group forgot (evicted from its table) that retries.
//! In process, one member.

use std::sync::Arc;
use std::time::Duration;

use corelog::client::{Client, ClientOptions};
use corelog::clientpb::Consistency;

use super::support::*;

/// Eight threads share one client and append to one group at once. Its
/// producer numbers their batches in one order; whatever order they
/// reach the group in, every append succeeds, at offsets of its own, and
/// the log holds each value exactly once.
#[test]
fn concurrent_appends_through_one_client_all_land_exactly_once() {
    let _g = serial();
    let (_dir, srv) = solo_server(1, 1, |_| {});
    let c = Arc::new(Client::connect(srv.client_addrs(), ClientOptions::default()).unwrap());
    const THREADS: usize = 8;
    const EACH: usize = 40;
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0..EACH {
                    let v = format!("t{t}-{i}");
                    match c.append(0, &[v.as_bytes()]) {
                        Ok(a) => got.push((a.base_offset, v)),
                        Err(e) => panic!("append {v}: {e}"),
                    }
                }
                got
            })
        })
        .collect();
    let mut acked: Vec<(u64, String)> = Vec::new();
    for w in workers {
        acked.extend(w.join().expect("a worker failed"));
    }
    acked.sort();
    let log = read_all_from(srv.client_addrs()[0], 0, Consistency::AnyReplica);
    assert_eq!(log.len(), THREADS * EACH, "values written twice or lost");
    assert_eq!(acked, log, "an acknowledged offset does not hold its value");
    drop(c);
    srv.stop(Duration::from_secs(1)).unwrap();
}
