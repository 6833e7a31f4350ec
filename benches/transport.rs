//! Peer codec cost: the zero-copy frame encoder against plain prost
//! `encode_to_vec`, for one MsgApp of 1 or 64 entries of 128 B, 1 KiB and
//! 16 KiB payloads, and the crc32 of the frame on its own (the price of
//! the frame checksum DESIGN.md §6 asks for).
//!
//! - `prost_encode_to_vec`: a fresh `Vec` holding the message, payloads
//!   copied in (what a naive transport does before its write).
//! - `prost_encode_to_vec+crc32`: the same plus the crc over it: a framed,
//!   copying encoder.
//! - `zero_copy_frame`: `Encoder::push_ref` + `finish` (crc included),
//!   reusing the encoder; payloads are referenced, not copied.
//! - `crc32_only`: crc32fast over the encoded message's bytes.
//!
//! Throughput is in payload bytes, so the figures read as GiB/s of entry
//! data made ready for the socket.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use corelog::raftpb::{Entry, Message};
use corelog::transport::frame::checksum;
use corelog::transport::{Encoder, Limits};
use criterion::{Criterion, Throughput};
use prost::Message as _;

fn msg_app(payload: usize, entries: usize) -> Message {
    // One shared buffer per entry, as the Raft core hands them out.
    let entries = (0..entries)
        .map(|i| Entry {
            r#type: 0,
            term: 7,
            index: 1000 + i as u64,
            data: Bytes::from(vec![0x5a; payload]),
        })
        .collect();
    Message {
        r#type: 3,
        to: 2,
        from: 1,
        term: 7,
        log_term: 7,
        index: 999,
        entries,
        commit: 990,
        ..Message::default()
    }
}

/// Inline thresholds compared: never copy, and copy up to 256 bytes.
const INLINE: [usize; 3] = [0, 32, 256];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("transport_encode");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for payload in [128usize, 1024, 16 * 1024] {
        for entries in [1usize, 64] {
            let msg = msg_app(payload, entries);
            let id = format!("{payload}B_x{entries}");
            g.throughput(Throughput::Bytes((payload * entries) as u64));

            g.bench_function(format!("prost_encode_to_vec/{id}"), |b| {
                b.iter(|| black_box(black_box(&msg).encode_to_vec()))
            });
            g.bench_function(format!("prost_encode_to_vec+crc32/{id}"), |b| {
                b.iter(|| {
                    let v = black_box(&msg).encode_to_vec();
                    black_box(crc32fast::hash(&v));
                    black_box(v)
                })
            });
            for inline in INLINE {
                let mut enc = Encoder::with_inline_max(Limits::default(), inline);
                g.bench_function(format!("zero_copy_frame_inline{inline}/{id}"), |b| {
                    b.iter(|| {
                        enc.clear();
                        enc.push_ref(1, black_box(&msg)).expect("within limits");
                        let f = enc.finish();
                        black_box(f.len())
                    })
                });
            }
            let encoded = msg.encode_to_vec();
            g.bench_function(format!("crc32_only/{id}"), |b| {
                b.iter(|| black_box(crc32fast::hash(black_box(&encoded))))
            });
            g.bench_function(format!("crc32c_only/{id}"), |b| {
                b.iter(|| black_box(checksum(black_box(&encoded))))
            });
        }
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
