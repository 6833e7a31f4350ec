//! Peer codec cost: the zero-copy frame encoder against plain prost
//! `encode_to_vec`, for one MsgApp of 1 or 64 entries of 128 B, 1 KiB and
//! 16 KiB payloads, and the crc32 of the frame on its own (the price of
//! the frame checksum DESIGN.md §6 asks for).
//!
//! - `prost_encode_to_vec`: a fresh `Vec` holding the message, payloads
//!   copied in (what a naive transport does before its write).
//! - `prost_encode_to_vec+crc32`: the same plus the crc over it: a framed,
//!   copying encoder.
//! - `zero_copy_frame_inlineN`: `Encoder::push_ref` + `finish` (crc
//!   included), reusing the encoder; payloads longer than N bytes are
//!   referenced, shorter ones copied (N = 0: never copy; N = 1024: the
//!   default).
//! - `crc32_only`, `crc32c_only`: the checksum alone over the encoded
//!   message's bytes, crc32fast (the frame's) and CRC-32C.
//!
//! After criterion, `compare()` prints the same variants (and the crc of
//! the frame's chunks one by one) measured in interleaved rounds, medians:
//! the table docs/benchmarks.md records.
//!
//! Throughput is in payload bytes, so the figures read as GiB/s of entry
//! data made ready for the socket.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corelog::raftpb::{Entry, Message};

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

/// Inline thresholds compared: never copy, and the default (copy payloads
/// up to 1 KiB).
const INLINE: [usize; 2] = [0, corelog::transport::codec::INLINE_MAX];

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
                b.iter(|| black_box(crc32c::crc32c(black_box(&encoded))))
            });
        }
    }
    g.finish();
}

/// The frame's chunks (never-inline layout), checksummed one by one with
/// crc32fast (IEEE), as `Encoder::finish` does.
fn chunked_crc32fast(chunks: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for c in chunks {
        h.update(c);
    }
    h.finalize()
}

/// The same with CRC-32C (hardware crc32 instructions, no per-call setup).
fn chunked_crc32c(chunks: &[&[u8]]) -> u32 {
    chunks
        .iter()
        .fold(0, |crc, c| crc32c::crc32c_append(crc, c))
}

/// Nanoseconds per call of each variant, measured in interleaved rounds
/// (A, B, C, ..., A, B, C, ...) and reported as the median round, so that
/// load from other processes hits every variant alike.
fn interleaved(rounds: usize, iters: u64, variants: &mut [(&str, &mut dyn FnMut())]) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            samples[i].push(t.elapsed().as_nanos() as f64 / iters as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(|a, b| a.total_cmp(b));
            s[s.len() / 2]
        })
        .collect()
}

/// The comparison this bench exists for, printed as a table.
fn compare() {
    println!();
    println!("interleaved medians, ns per message (9 rounds):");
    println!(
        "{:<12} {:>10} {:>12} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "payload",
        "prost",
        "prost+crc32",
        "zc_inl0",
        "zc_inl256",
        "zc_inl1024",
        "crc32fast_ch",
        "crc32c_ch"
    );
    for payload in [128usize, 1024, 4096, 16 * 1024] {
        for entries in [1usize, 64] {
            let msg = msg_app(payload, entries);
            let iters = (4_000_000 / (payload * entries + 200)).max(20) as u64;
            let mut e0 = Encoder::with_inline_max(Limits::default(), 0);
            let mut e256 = Encoder::with_inline_max(Limits::default(), 256);
            let mut e1024 = Encoder::with_inline_max(Limits::default(), 1024);
            e0.push_ref(1, &msg).expect("within limits");
            let chunks: Vec<Vec<u8>> = e0.finish().chunks().map(|c| c.to_vec()).collect();
            let chunks: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
            let m = &msg;
            let r = interleaved(
                9,
                iters,
                &mut [
                    ("prost", &mut || {
                        black_box(black_box(m).encode_to_vec());
                    }),
                    ("prost+crc32", &mut || {
                        let v = black_box(m).encode_to_vec();
                        black_box(crc32fast::hash(&v));
                    }),
                    ("zc_inl0", &mut || {
                        e0.clear();
                        e0.push_ref(1, black_box(m)).expect("within limits");
                        black_box(e0.finish().len());
                    }),
                    ("zc_inl256", &mut || {
                        e256.clear();
                        e256.push_ref(1, black_box(m)).expect("within limits");
                        black_box(e256.finish().len());
                    }),
                    ("zc_inl1024", &mut || {
                        e1024.clear();
                        e1024.push_ref(1, black_box(m)).expect("within limits");
                        black_box(e1024.finish().len());
                    }),
                    ("crc32fast_chunked", &mut || {
                        black_box(chunked_crc32fast(black_box(&chunks)));
                    }),
                    ("crc32c_chunked", &mut || {
                        black_box(chunked_crc32c(black_box(&chunks)));
                    }),
                ],
            );
            println!(
                "{:<12} {:>10.0} {:>12.0} {:>10.0} {:>10.0} {:>10.0} {:>12.0} {:>12.0}",
                format!("{payload}Bx{entries}"),
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6]
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    // Only in a real bench run (`cargo bench`), not under `cargo test`.
    if std::env::args().any(|a| a == "--bench") {
        compare();
    }
}
