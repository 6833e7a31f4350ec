//! Mutations of one input: bit flips, byte sets, inserts, deletes, block
//! copies, splices with another corpus input, and interesting integers
//! written where length and count fields sit (every 4- or 8-byte aligned
//! little-endian word of our formats is a candidate). Without coverage
//! feedback the mix leans on the structure-aware seeds and on the targets'
//! fixups (checksums recomputed) to get past the first checks.

use crate::rng::Rng;

/// Values at which length and count checks tend to break: zero, one,
/// around the powers of two of our limits, and the type maxima.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    9,
    12,
    13,
    16,
    20,
    24,
    28,
    32,
    36,
    40,
    44,
    64,
    127,
    128,
    255,
    256,
    1023,
    1024,
    1025,
    4095,
    4096,
    4097,
    65535,
    65536,
    65537,
    (1 << 20) - 1,
    1 << 20,
    (1 << 20) + 1,
    (1 << 24) + 1,
    (64 << 20) + 1,
    i32::MAX as u64,
    1 << 31,
    u32::MAX as u64 - 1,
    u32::MAX as u64,
    1 << 32,
    (1 << 32) + 1,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

/// Inputs never grow past this: our decoders' interesting cases are in
/// their headers and counts, not in their bulk.
pub const MAX_INPUT: usize = 256 << 10;

/// Applies 1 to 8 random mutations to `data`; `other` is a second corpus
/// input to splice from.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    let n = 1 + rng.below(8);
    for _ in 0..n {
        mutate_once(rng, data, other);
    }
    data.truncate(MAX_INPUT);
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    if data.is_empty() {
        let len = 1 + rng.below(64);
        data.extend((0..len).map(|_| rng.next_u64() as u8));
        return;
    }
    let len = data.len();
    match rng.below(11) {
        0 | 1 => {
            let at = rng.below(len);
            data[at] ^= 1 << rng.below(8);
        }
        2 => {
            let at = rng.below(len);
            data[at] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                2 => 0x80,
                _ => rng.next_u64() as u8,
            };
        }
        3 | 4 => {
            // An interesting integer, 1, 2, 4 or 8 bytes wide, often at an
            // aligned offset (where our fixed-layout fields sit).
            let width = [1usize, 2, 4, 8][rng.below(4)];
            if len < width {
                return;
            }
            let mut at = rng.below(len - width + 1);
            if rng.one_in(2) {
                at -= at % width;
            }
            let mut v = INTERESTING[rng.below(INTERESTING.len())];
            if rng.one_in(4) {
                v = v.wrapping_add(rng.below(5) as u64).wrapping_sub(2);
            }
            let bytes = v.to_le_bytes();
            if rng.one_in(8) {
                let be = v.to_be_bytes();
                data[at..at + width].copy_from_slice(&be[8 - width..]);
            } else {
                data[at..at + width].copy_from_slice(&bytes[..width]);
            }
        }
        5 => {
            // A protobuf varint: the wire format of raftpb and clientpb.
            let at = rng.below(len + 1);
            let mut v = INTERESTING[rng.below(INTERESTING.len())];
            let mut varint = Vec::with_capacity(10);
            loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    varint.push(b);
                    break;
                }
                varint.push(b | 0x80);
            }
            data.splice(at..at, varint);
        }
        6 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let byte = rng.next_u64() as u8;
            let random = rng.one_in(2);
            let ins: Vec<u8> = (0..n)
                .map(|_| if random { rng.next_u64() as u8 } else { byte })
                .collect();
            data.splice(at..at, ins);
        }
        7 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            data.drain(at..at + n);
        }
        8 => {
            // Copy a block of the input elsewhere in it (duplicates a
            // record or a field).
            let from = rng.below(len);
            let n = 1 + rng.below((len - from).min(256));
            let block = data[from..from + n].to_vec();
            let at = rng.below(len + 1);
            if rng.one_in(2) {
                data.splice(at..at, block);
            } else {
                let end = (at + n).min(len);
                data.splice(at..end, block);
            }
        }
        9 => {
            // Splice: the head of this input, the tail of another.
            if other.is_empty() {
                return;
            }
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        _ => {
            let at = rng.below(len);
            data.truncate(at.max(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_change_inputs_and_respect_the_size_bound() {
        let mut rng = Rng::new(7);
        let base = vec![0u8; 100];
        let mut changed = 0;
        for _ in 0..1000 {
            let mut d = base.clone();
            mutate(&mut rng, &mut d, &[1, 2, 3]);
            assert!(d.len() <= MAX_INPUT);
            if d != base {
                changed += 1;
            }
        }
        assert!(
            changed > 900,
            "only {changed} of 1000 mutated inputs differ"
        );
    }
}
