//! corelog-fuzz: fuzz targets for corelog's decoders, and a small
//! coverage-free mutational fuzzer to run them on stable Rust.
//!
//! Why not cargo-fuzz / libFuzzer: they need a nightly toolchain (and
//! sanitizer coverage), and this project builds on stable only. afl is not
//! installed here, and bolero's stable mode is plain random input without
//! the structure-aware seeds and checksum fixups that matter most for our
//! formats (every frame, batch, segment and snapshot carries a crc that
//! random bytes never pass). So: our own loop (`engine`), seeded and
//! reproducible, mutating a corpus built by our own encoders, each target
//! fixing up checksums before decoding, a panic caught with
//! `catch_unwind`, the largest single allocation checked by a counting
//! global allocator (`alloc`).

pub mod alloc;
pub mod corpus;
pub mod engine;
pub mod mutate;
pub mod rng;
pub mod targets;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;
