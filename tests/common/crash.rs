//! Crash images of a WAL directory: what a restarted process finds.
//!
//! A process whose WAL failed a flush never reopens that directory (its
//! page cache may hold pages that never reached the disk; `Wal::open`
//! refuses with `PoisonedDirectory`). A test that injected the failure
//! knows exactly which bytes landed, so it recovers from a copy of the
//! directory's files instead, standing for the disk after a restart.

use std::path::Path;

/// Copies the files of `dir` into a new temporary directory.
pub fn crash_image(dir: &Path) -> tempfile::TempDir {
    let img = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, img.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    img
}
