//! The key both doors prove with, made from the secret file, and the two
//! operations on it: make a proof, check one (in constant time). Also the
//! nonces, fresh from the OS for every handshake.
//!
//! The key is SHA-256 of the secret (so it has a fixed size and the type
//! is `Copy`, cheap to hand to every shard and connection); a proof is
//! HMAC-SHA256 under it of `label || 0x00 || the handshake's bytes`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Fewest bytes a secret may have (after its trailing line ending is
/// dropped): 256 bits, as much as the MAC's key can use.
pub const MIN_SECRET_BYTES: usize = 32;
/// Most bytes a secret file may have: it is read whole, and a larger
/// file is surely not a secret (a mistyped path).
pub const MAX_SECRET_FILE_BYTES: u64 = 64 << 10;
/// Bytes of a nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes of a proof (an HMAC-SHA256 tag).
pub const PROOF_LEN: usize = 32;

/// A nonce: 32 bytes from the OS, used once.
pub type Nonce = [u8; NONCE_LEN];
/// A proof: an HMAC-SHA256 tag.
pub type Proof = [u8; PROOF_LEN];

type HmacSha256 = Hmac<Sha256>;

/// The key made from the cluster's secret. `Debug` never shows it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthKey([u8; 32]);

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(..)")
    }
}

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The file could not be read.
    Read { path: PathBuf, reason: String },
    /// The file is larger than `MAX_SECRET_FILE_BYTES`.
    TooLarge {
        path: PathBuf,
        bytes: u64,
        limit: u64,
    },
    /// Fewer than `MIN_SECRET_BYTES` bytes once the trailing line ending
    /// is dropped.
    TooShort { bytes: usize, min: usize },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::Read { path, reason } => {
                write!(f, "auth secret file {}: {reason}", path.display())
            }
            SecretError::TooLarge { path, bytes, limit } => write!(
                f,
                "auth secret file {}: {bytes} bytes, more than the {limit} a secret may have",
                path.display()
            ),
            SecretError::TooShort { bytes, min } => write!(
                f,
                "auth secret: {bytes} bytes, fewer than the {min} required (e.g. `openssl rand -hex 32`)"
            ),
        }
    }
}

impl std::error::Error for SecretError {}

/// A secret read from its file.
#[derive(Debug, Clone, Copy)]
pub struct LoadedSecret {
    pub key: AuthKey,
    /// Others than the owner and the group may read the file: the caller
    /// warns (the secret is usable, but hardly secret).
    pub world_readable: bool,
}

impl AuthKey {
    /// The key of `secret`: its bytes less one trailing `\n` or `\r\n`
    /// (what an editor or `echo` adds), refused below `MIN_SECRET_BYTES`.
    pub fn from_secret(secret: &[u8]) -> Result<AuthKey, SecretError> {
        let s = secret
            .strip_suffix(b"\n")
            .map(|s| s.strip_suffix(b"\r").unwrap_or(s))
            .unwrap_or(secret);
        if s.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort {
                bytes: s.len(),
                min: MIN_SECRET_BYTES,
            });
        }
        Ok(AuthKey(Sha256::digest(s).into()))
    }

    /// Reads the secret file at `path`.
    pub fn load(path: &Path) -> Result<LoadedSecret, SecretError> {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        let read_err = |e: io::Error| SecretError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let f = std::fs::File::open(path).map_err(read_err)?;
        let meta = f.metadata().map_err(read_err)?;
        if meta.len() > MAX_SECRET_FILE_BYTES {
            return Err(SecretError::TooLarge {
                path: path.to_path_buf(),
                bytes: meta.len(),
                limit: MAX_SECRET_FILE_BYTES,
            });
        }
        let mut bytes = Vec::new();
        // Bounded even if the file grows after the check.
        f.take(MAX_SECRET_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
            return Err(SecretError::TooLarge {
                path: path.to_path_buf(),
                bytes: bytes.len() as u64,
                limit: MAX_SECRET_FILE_BYTES,
            });
        }
        let key = AuthKey::from_secret(&bytes)?;
        Ok(LoadedSecret {
            key,
            world_readable: meta.permissions().mode() & 0o004 != 0,
        })
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> HmacSha256 {
        // A 32-byte key: `new_from_slice` takes keys of any length.
        let mut m = match HmacSha256::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes a key of any length"),
        };
        m.update(label);
        // Labels hold no zero byte: the separator ends the label
        // unambiguously.
        m.update(&[0]);
        for p in parts {
            m.update(p);
        }
        m
    }

    /// The proof, under `label`, of the handshake bytes `parts` (in order).
    pub fn prove(&self, label: &[u8], parts: &[&[u8]]) -> Proof {
        self.mac(label, parts).finalize().into_bytes().into()
    }

    /// Whether `proof` is the proof of `parts` under `label`; the
    /// comparison takes the same time whatever bytes differ.
    pub fn verify(&self, label: &[u8], parts: &[&[u8]], proof: &[u8]) -> bool {
        self.mac(label, parts).verify_slice(proof).is_ok()
    }
}

/// A fresh nonce from the OS (`getrandom(2)`). An error here refuses the
/// handshake: a predictable nonce would let a recorded proof be replayed.
pub fn nonce() -> io::Result<Nonce> {
    let mut n = [0u8; NONCE_LEN];
    crate::shard::seed::fill(&mut n)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::label;
    use super::*;

    fn key() -> AuthKey {
        AuthKey::from_secret(&[7u8; 32]).unwrap()
    }

    #[test]
    fn a_secret_below_32_bytes_is_refused_and_one_line_ending_is_dropped() {
        assert_eq!(
            AuthKey::from_secret(&[1u8; 31]),
            Err(SecretError::TooShort { bytes: 31, min: 32 })
        );
        // 31 bytes and a newline are still 31.
        let mut s = vec![b'a'; 31];
        s.push(b'\n');
        assert!(matches!(
            AuthKey::from_secret(&s),
            Err(SecretError::TooShort { bytes: 31, .. })
        ));
        let a = AuthKey::from_secret(&[b'a'; 32]).unwrap();
        let mut with_nl = vec![b'a'; 32];
        with_nl.extend_from_slice(b"\r\n");
        assert_eq!(AuthKey::from_secret(&with_nl).unwrap(), a);
        assert_ne!(AuthKey::from_secret(&[b'b'; 32]).unwrap(), a);
    }

    #[test]
    fn the_key_is_sha256_of_the_secret_and_never_printed() {
        let k = AuthKey::from_secret(&[b'a'; 32]).unwrap();
        let want: [u8; 32] = Sha256::digest([b'a'; 32]).into();
        assert_eq!(k.0, want);
        assert_eq!(format!("{k:?}"), "AuthKey(..)");
    }

    #[test]
    fn a_proof_checks_only_under_its_own_label_key_and_bytes() {
        let k = key();
        let p = k.prove(label::CLIENT, &[b"hello", b"world"]);
        assert!(k.verify(label::CLIENT, &[b"hello", b"world"], &p));
        // Where the parts split does not matter, what they hold does.
        assert!(k.verify(label::CLIENT, &[b"hellowor", b"ld"], &p));
        assert!(!k.verify(label::SERVER, &[b"hello", b"world"], &p));
        assert!(!k.verify(label::CLIENT, &[b"hello", b"worle"], &p));
        let other = AuthKey::from_secret(&[8u8; 32]).unwrap();
        assert!(!other.verify(label::CLIENT, &[b"hello", b"world"], &p));
        let mut bad = p;
        bad[31] ^= 1;
        assert!(!k.verify(label::CLIENT, &[b"hello", b"world"], &bad));
        assert!(!k.verify(label::CLIENT, &[b"hello", b"world"], &p[..31]));
    }

    #[test]
    fn the_proof_is_hmac_sha256_of_label_zero_and_bytes() {
        let k = key();
        let mut m = HmacSha256::new_from_slice(&k.0).unwrap();
        m.update(b"corelog-auth v1 server\0abc");
        let want: [u8; 32] = m.finalize().into_bytes().into();
        assert_eq!(k.prove(label::SERVER, &[b"abc"]), want);
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce().unwrap(), nonce().unwrap());
    }

    #[test]
    fn a_file_is_loaded_and_a_world_readable_one_is_flagged() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("secret");
        std::fs::write(&p, format!("{}\n", "ab".repeat(32))).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let l = AuthKey::load(&p).unwrap();
        assert!(!l.world_readable);
        assert_eq!(
            l.key,
            AuthKey::from_secret("ab".repeat(32).as_bytes()).unwrap()
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(AuthKey::load(&p).unwrap().world_readable);
        std::fs::write(&p, "short\n").unwrap();
        assert!(matches!(
            AuthKey::load(&p),
            Err(SecretError::TooShort { bytes: 5, .. })
        ));
        std::fs::write(&p, vec![b'x'; (MAX_SECRET_FILE_BYTES + 1) as usize]).unwrap();
        assert!(matches!(
            AuthKey::load(&p),
            Err(SecretError::TooLarge { .. })
        ));
        assert!(matches!(
            AuthKey::load(&d.path().join("none")),
            Err(SecretError::Read { .. })
        ));
    }
}
