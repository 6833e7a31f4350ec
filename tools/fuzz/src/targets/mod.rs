//! The fuzz targets: one per decoder family. Each names its seeds (built by
//! our own encoders, so mutations start from inputs that pass the first
//! checks), its fixup (recomputes checksums and sizes so a mutated input
//! reaches the code behind them) and its run, which feeds the bytes to the
//! decoder and panics on a broken property: a panic of the decoder itself,
//! decode(encode(x)) != x, or an allocation above the target's bound.

pub mod auth;
pub mod batch;
pub mod client;
pub mod peer;
pub mod raftpb;
pub mod snapshot;
pub mod wal;

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    /// Structure-aware seeds, from our encoders.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Makes checksums (and sizes) of a mutated input right again.
    pub fixup: fn(&mut [u8]),
    /// Decodes the input, checking the target's properties (panics if one
    /// is broken); returns a label of the outcome (which error, or which
    /// kind of success), the fuzzer's only feedback.
    pub run: fn(&[u8]) -> u64,
    /// The largest single allocation a run may make, whatever the input:
    /// the limits the target configures, with room for the decoder's
    /// fixed overheads...
    pub max_alloc: usize,
    /// ... plus this many bytes per input byte: what decoding inherently
    /// costs (a 2-byte protobuf entry becomes an `Entry` struct), so that
    /// only a length or count trusted beyond the bytes that hold it fails.
    pub alloc_per_input_byte: usize,
}

/// A decoded raftpb entry or message per the fewest wire bytes that can
/// announce it (an entry's key and length: 2 bytes; a frame record's
/// header: 12 bytes), rounded up.
pub const RAFTPB_PER_BYTE: usize = {
    let entry = std::mem::size_of::<corelog::raftpb::Entry>() / 2 + 1;
    let msg = std::mem::size_of::<(u64, corelog::raftpb::Message)>() / 12 + 1;
    if entry > msg { entry } else { msg }
};

pub const ALL: &[Target] = &[
    peer::TARGET,
    client::TARGET,
    wal::TARGET,
    raftpb::TARGET,
    batch::TARGET,
    snapshot::TARGET,
    auth::TARGET,
];

pub fn by_name(name: &str) -> Option<&'static Target> {
    ALL.iter().find(|t| t.name == name)
}

/// A label for an outcome: the Debug text of an error with its numbers
/// taken out (so "Truncated { needed: 9 }" and "{ needed: 12 }" are one
/// kind), hashed.
pub fn label(debug: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in debug.bytes().filter(|b| !b.is_ascii_digit()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Combines labels of the steps of one run.
pub fn mix(a: u64, b: u64) -> u64 {
    (a ^ b.rotate_left(17)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Adds a step's label to a set of outcome kinds (one of 16 bits): for
/// targets that decode a stream of frames, where the order and number of
/// steps would make every input "new".
pub fn set(acc: u64, step: u64) -> u64 {
    acc | 1 << (step.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60)
}
