//! `member.meta`: the identity of a member's data directory (which
//! cluster, which member, how many shards), so that a directory is never
//! started as another member or in another cluster. Written once, at
//! bootstrap, atomically (temporary file, fsync, rename, fsync of the
//! directory); read at every restart and checked byte by byte.
//!
//! Layout (little-endian, 36 bytes, nothing after):
//!
//! ```text
//! 0   magic      [u8; 8]  "CLMEMBER"
//! 8   version    u32      META_VERSION (1)
//! 12  shards     u32      the member's shard count (a group's shard depends on it)
//! 16  cluster id u64
//! 24  member id  u64
//! 32  crc32      u32      of bytes 0..32 (crc32fast)
//! ```

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// File name inside the data directory.
pub const META_FILE: &str = "member.meta";
const META_TMP: &str = "member.meta.tmp";
const MAGIC: [u8; 8] = *b"CLMEMBER";
/// The version this build writes and reads.
pub const META_VERSION: u32 = 1;
/// Bytes of the file.
pub const META_LEN: usize = 36;

/// What a data directory says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberMeta {
    pub cluster_id: u64,
    pub member_id: u64,
    pub shards: u32,
}

/// Why `member.meta` could not be read or written.
#[derive(Debug)]
pub enum MetaError {
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The file is not `META_LEN` bytes long.
    WrongSize {
        path: PathBuf,
        len: u64,
    },
    BadMagic {
        path: PathBuf,
    },
    /// Written by another version of corelog.
    VersionMismatch {
        path: PathBuf,
        found: u32,
    },
    CrcMismatch {
        path: PathBuf,
    },
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaError::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            MetaError::WrongSize { path, len } => write!(
                f,
                "{}: {len} bytes, a member.meta has exactly {META_LEN}",
                path.display()
            ),
            MetaError::BadMagic { path } => {
                write!(f, "{}: not a corelog member.meta", path.display())
            }
            MetaError::VersionMismatch { path, found } => write!(
                f,
                "{}: format version {found}, this build reads {META_VERSION}",
                path.display()
            ),
            MetaError::CrcMismatch { path } => {
                write!(f, "{}: checksum mismatch (corrupt)", path.display())
            }
        }
    }
}

impl std::error::Error for MetaError {}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> MetaError + use<> {
    let path = path.to_path_buf();
    move |source| MetaError::Io { op, path, source }
}

impl MemberMeta {
    pub fn encode(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&META_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.shards.to_le_bytes());
        b[16..24].copy_from_slice(&self.cluster_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.member_id.to_le_bytes());
        let crc = crc32fast::hash(&b[0..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks the bytes of `path`: size, magic, version, crc.
    pub fn decode(path: &Path, b: &[u8]) -> Result<MemberMeta, MetaError> {
        let p = || path.to_path_buf();
        if b.len() != META_LEN {
            return Err(MetaError::WrongSize {
                path: p(),
                len: b.len() as u64,
            });
        }
        if b[0..8] != MAGIC {
            return Err(MetaError::BadMagic { path: p() });
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        let version = u32_at(8);
        if version != META_VERSION {
            return Err(MetaError::VersionMismatch {
                path: p(),
                found: version,
            });
        }
        if crc32fast::hash(&b[0..32]) != u32_at(32) {
            return Err(MetaError::CrcMismatch { path: p() });
        }
        Ok(MemberMeta {
            shards: u32_at(12),
            cluster_id: u64_at(16),
            member_id: u64_at(24),
        })
    }

    /// Reads `<dir>/member.meta`; `Ok(None)` if there is none.
    pub fn read(dir: &Path) -> Result<Option<MemberMeta>, MetaError> {
        let path = dir.join(META_FILE);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        // Read one byte past the size to tell a longer file apart, never
        // more: the size is checked before anything is trusted.
        let mut b = Vec::with_capacity(META_LEN + 1);
        (&mut f)
            .take(META_LEN as u64 + 1)
            .read_to_end(&mut b)
            .map_err(io_err("read", &path))?;
        MemberMeta::decode(&path, &b).map(Some)
    }

    /// Writes `<dir>/member.meta` atomically: a crash leaves either no
    /// file or the whole new one.
    pub fn write(&self, dir: &Path) -> Result<(), MetaError> {
        let tmp = dir.join(META_TMP);
        let path = dir.join(META_FILE);
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(io_err("create", &tmp))?;
            f.write_all(&self.encode()).map_err(io_err("write", &tmp))?;
            f.sync_all().map_err(io_err("fsync", &tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync directory", dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> MemberMeta {
        MemberMeta {
            cluster_id: 0x1122_3344_5566_7788,
            member_id: 3,
            shards: 2,
        }
    }

    #[test]
    fn written_meta_reads_back_and_the_temporary_is_gone() {
        let d = tempfile::tempdir().unwrap();
        assert!(MemberMeta::read(d.path()).unwrap().is_none());
        meta().write(d.path()).unwrap();
        assert_eq!(MemberMeta::read(d.path()).unwrap(), Some(meta()));
        assert!(!d.path().join(META_TMP).exists());
        // Pinned layout: magic, version, shards, cluster, member, crc.
        let b = fs::read(d.path().join(META_FILE)).unwrap();
        assert_eq!(&b[0..8], b"CLMEMBER");
        assert_eq!(&b[8..12], &[1, 0, 0, 0]);
        assert_eq!(&b[12..16], &[2, 0, 0, 0]);
        assert_eq!(&b[16..24], &0x1122_3344_5566_7788u64.to_le_bytes());
    }

    #[test]
    fn every_damage_is_refused_with_its_own_error() {
        let p = Path::new("/x/member.meta");
        let good = meta().encode();
        assert!(matches!(
            MemberMeta::decode(p, &good[..35]),
            Err(MetaError::WrongSize { len: 35, .. })
        ));
        let mut long = good.to_vec();
        long.push(0);
        assert!(matches!(
            MemberMeta::decode(p, &long),
            Err(MetaError::WrongSize { len: 37, .. })
        ));
        let mut b = good;
        b[0] = b'X';
        assert!(matches!(
            MemberMeta::decode(p, &b),
            Err(MetaError::BadMagic { .. })
        ));
        let mut b = good;
        b[8] = 9;
        assert!(matches!(
            MemberMeta::decode(p, &b),
            Err(MetaError::VersionMismatch { found: 9, .. })
        ));
        // Any flipped bit of the body or the crc fails the crc.
        for i in 12..36 {
            let mut b = good;
            b[i] ^= 0x10;
            assert!(
                matches!(
                    MemberMeta::decode(p, &b),
                    Err(MetaError::CrcMismatch { .. })
                ),
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_longer_file_is_refused_without_reading_it_all() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join(META_FILE), vec![0u8; 1 << 20]).unwrap();
        assert!(matches!(
            MemberMeta::read(d.path()),
            Err(MetaError::WrongSize { len: 37, .. })
        ));
    }
}
