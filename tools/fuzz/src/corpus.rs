//! Where inputs live on disk: `corpus/<target>/` (seeds and inputs that
//! reached a new outcome, committed), `regressions/<target>/` (inputs that
//! once crashed, committed, replayed by the tests) and `crashes/` (what a
//! run found, not committed). Files are named by a hash of their bytes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The crate's directory: the corpus and regressions sit beside the code.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn corpus_dir(target: &str) -> PathBuf {
    root().join("corpus").join(target)
}

pub fn regressions_dir(target: &str) -> PathBuf {
    root().join("regressions").join(target)
}

pub fn crashes_dir() -> PathBuf {
    root().join("crashes")
}

/// 64-bit FNV-1a: a stable file name for an input.
pub fn hash(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Every file of `dir`, sorted by name; a missing directory is empty.
pub fn load(dir: &Path) -> io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| fs::read(&p).map(|b| (p, b)))
        .collect()
}

/// Writes `b` into `dir` as `<prefix><hash>`; returns its path.
pub fn save(dir: &Path, prefix: &str, b: &[u8]) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let p = dir.join(format!("{prefix}{:016x}", hash(b)));
    fs::write(&p, b)?;
    Ok(p)
}
