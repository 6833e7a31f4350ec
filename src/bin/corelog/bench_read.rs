//! The consumers' workloads: catch-up reads of committed records (each
//! consumer reads its groups from the first offset to the end, one read
//! answer after another, from any replica) and tails following live
//! appends (delivery latency: from the append's send time, carried in the
//! first 8 bytes of each record, to the tail handing the record out).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use corelog::client::{Client, ClientError};
use corelog::clientpb::Consistency;

use super::bench_load::{self, Live, Shared, kind_of};
use super::bench_report::{self, Counts};

/// Reads every group of `0..groups` from offset 0 to its end, consumer
/// `c` (of `clients.len()`) taking groups `c, c + n, ...`. Returns the
/// counts (one request per read answer) and the seconds taken.
pub fn catch_up(clients: &[Arc<Client>], groups: u64, live: bool) -> (Counts, f64) {
    let shared = Shared::starting_now();
    let lives: Vec<Live> = clients.iter().map(|_| Live::new()).collect();
    let done = AtomicBool::new(false);
    let n = clients.len() as u64;
    let results: Vec<(Counts, Option<Instant>)> = std::thread::scope(|s| {
        if live {
            let (lives, done, shared) = (&lives, &done, &shared);
            s.spawn(move || bench_load::live_lines("read", shared, lives, done));
        }
        let hs: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(c, client)| {
                let live = &lives[c];
                s.spawn(move || {
                    let mut counts = Counts::default();
                    let mut last = None;
                    let mut g = c as u64;
                    while g < groups {
                        let mut offset = 0u64;
                        while !super::bench_interrupt::interrupted() {
                            let t = Instant::now();
                            match client.read(g, offset, 0, Consistency::AnyReplica) {
                                Ok(r) => {
                                    let us = t.elapsed().as_micros() as u64;
                                    let Some((lastoff, _)) = r.records.last() else {
                                        break;
                                    };
                                    let recs = r.records.len() as u64;
                                    let bytes: u64 =
                                        r.records.iter().map(|(_, b)| b.len() as u64).sum();
                                    offset = lastoff + 1;
                                    counts.requests += 1;
                                    counts.records += recs;
                                    counts.bytes += bytes;
                                    bench_report::record_us(&mut counts.hist, us);
                                    live.records.fetch_add(recs, Ordering::Relaxed);
                                    live.bytes.fetch_add(bytes, Ordering::Relaxed);
                                    if let Ok(mut h) = live.hist.lock() {
                                        bench_report::record_us(&mut h, us);
                                    }
                                    last = Some(Instant::now());
                                    if offset >= r.latest {
                                        break;
                                    }
                                }
                                Err(e) => {
                                    counts.errors[kind_of(&e)] += 1;
                                    live.errors.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                            }
                        }
                        g += n;
                    }
                    (counts, last)
                })
            })
            .collect();
        let r = hs
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect();
        done.store(true, Ordering::Relaxed);
        r
    });
    let mut total = Counts::default();
    let mut last: Option<Instant> = None;
    for (c, l) in &results {
        total.add(c);
        last = last.max(*l);
    }
    let elapsed = last.map_or(0.0, |l| {
        l.saturating_duration_since(shared.epoch).as_secs_f64()
    });
    (total, elapsed)
}

/// Follows groups `0..groups` from `from[g]` while the appends run: one
/// thread per group, on `client`. Counts each record whose append was
/// sent after the warm-up (its stamp), with its delivery latency, until
/// `appends_done` is set and nothing more comes for 500 ms.
pub fn follow(
    client: &Client,
    from: &[u64],
    shared: &Shared,
    appends_done: &AtomicBool,
) -> (Counts, f64) {
    let results: Vec<(Counts, Option<Instant>)> = std::thread::scope(|s| {
        let hs: Vec<_> = from
            .iter()
            .enumerate()
            .map(|(g, &offset)| {
                s.spawn(move || {
                    let mut tail = client.tail(g as u64, offset);
                    let mut counts = Counts::default();
                    let mut last = None;
                    let measure_ns = shared
                        .measure_from
                        .saturating_duration_since(shared.epoch)
                        .as_nanos() as u64;
                    loop {
                        let ended = appends_done.load(Ordering::Relaxed);
                        match tail.next(Duration::from_millis(500)) {
                            Ok(recs) => {
                                let now = Instant::now();
                                let now_ns =
                                    now.saturating_duration_since(shared.epoch).as_nanos() as u64;
                                for (_, r) in &recs {
                                    let Some(stamp) = r.get(..8) else {
                                        counts.errors[bench_report::ERROR_KINDS.len() - 1] += 1;
                                        continue;
                                    };
                                    let mut b = [0u8; 8];
                                    b.copy_from_slice(stamp);
                                    let sent = u64::from_le_bytes(b);
                                    if sent < measure_ns {
                                        continue;
                                    }
                                    counts.records += 1;
                                    counts.bytes += r.len() as u64;
                                    bench_report::record_us(
                                        &mut counts.hist,
                                        now_ns.saturating_sub(sent) / 1_000,
                                    );
                                    last = Some(now);
                                }
                                counts.requests += 1;
                            }
                            Err(ClientError::Timeout) if ended => break,
                            Err(ClientError::Timeout) => {}
                            Err(e) => {
                                counts.errors[kind_of(&e)] += 1;
                                if ended {
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                    (counts, last)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    });
    let mut total = Counts::default();
    let mut last: Option<Instant> = None;
    for (c, l) in &results {
        total.add(c);
        last = last.max(*l);
    }
    let elapsed = last.map_or(0.0, |l| {
        l.saturating_duration_since(shared.measure_from)
            .as_secs_f64()
    });
    (total, elapsed)
}
