//! Where the time of a one-record durable flush goes: the same small write
//! and data sync issued in different ways, interleaved in one process.
//!
//! Every variant writes `CORELOG_FLUSH_BYTES` (default 128) bytes at the
//! next offset of its own zero-filled, synced 64 MiB file (the state of a
//! WAL segment) and makes them durable, then waits for that. Each round
//! runs every variant once, the first of the round rotating, so that all
//! see the same disk; the report gives each variant's median latency and
//! rate, both as a ratio to the plain `pwrite + fdatasync` loop of the same
//! run, and the median over rounds of (base latency / variant latency) in
//! the same round, the figure least moved by the disk's drift. Variants:
//!
//! - `pwrite+fdatasync`: the baseline, inline on the calling thread (what
//!   raft-engine does; not allowed on a shard thread, which must never
//!   block on the disk);
//! - `pwritev2 RWF_DSYNC`: one syscall, inline;
//! - `uring link`: today's flush: write, then fdatasync with `IO_LINK`, one
//!   `submit`, then `submit_and_wait`;
//! - `uring link, defer_taskrun`: the same on a ring set up with
//!   `SINGLE_ISSUER | DEFER_TASKRUN` (completions run when the task waits);
//! - `uring link, coop_taskrun`: the same with `COOP_TASKRUN`;
//! - `uring link, io-wq on caller's cpu`: the same, with the ring's io-wq
//!   workers confined (`IORING_REGISTER_IOWQ_AFF`) to the CPU the caller
//!   was on at setup (run the whole bench under `taskset -c N` to keep the
//!   caller there too);
//! - `uring RWF_DSYNC`: one write op carrying `RWF_DSYNC`;
//! - `uring drain`: write, then fdatasync with `IO_DRAIN`, unlinked;
//! - `uring 2 steps`: write submitted and reaped, then fdatasync submitted
//!   and reaped (does the link itself cost anything?);
//! - `syncer thread`: a dedicated thread does pwrite + fdatasync; requests
//!   and replies go through eventfds (the caller sleeps on one, as a shard
//!   does);
//! - `pwrite + syncer fdatasync`: the write inline, the sync on the thread;
//! - `O_DIRECT` variants (rows 11-15): the file is opened `O_DIRECT`
//!   and each flush rewrites, from a 4 KiB-aligned buffer, the aligned
//!   blocks that hold the new bytes: the partial last block of the log
//!   (its earlier bytes kept in the buffer) with the record in it, so a
//!   128-byte flush is one 4 KiB write and a 64 KiB flush at an aligned
//!   offset is exactly 64 KiB. The blocks are written zeros, so each write
//!   is an overwrite that needs no extent change. Row 11: one io_uring
//!   write carrying `RWF_DSYNC`; row 12: the file opened
//!   `O_DIRECT | O_DSYNC`, a plain io_uring write; row 13: io_uring write,
//!   then fdatasync with `IO_LINK`; row 14: inline `pwrite` on the
//!   `O_DIRECT | O_DSYNC` file; row 15: inline `pwrite` on the `O_DIRECT`
//!   file, then `fdatasync`;
//! - `pwrite+sync_file_range`: NOT durable (no cache flush, no metadata),
//!   a reference for what the device cache flush costs; only run when
//!   named in `CORELOG_FLUSH_ONLY` (row 16), since the data it leaves in
//!   the device cache would be flushed by the next variant.
//!
//! Run: `cargo bench --bench flush_path` (`CORELOG_FLUSH_SECS`, default
//! 10; `CORELOG_BENCH_DIR` for where the files go; `CORELOG_FLUSH_ONLY` a
//! comma-separated list of rows to run alone, first row 0, the first row
//! is then the base). Linux only.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use io_uring::{IoUring, opcode, squeue, types};

const FILE: u64 = 64 << 20;

/// The block size of `O_DIRECT` writes: offsets, lengths and buffer
/// addresses are multiples of it (the disk's physical block and the page).
const BLOCK: usize = 4096;

/// A zeroed heap buffer aligned to `BLOCK`, as `O_DIRECT` needs.
struct Aligned {
    ptr: *mut u8,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let layout = std::alloc::Layout::from_size_align(len, BLOCK).unwrap();
        // SAFETY: `len` is not zero (callers ask for at least one block).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory");
        Aligned { ptr, len }
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` owns `len` initialised bytes, borrowed mutably here.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(self.len, BLOCK).unwrap();
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, layout) };
    }
}

/// Drops the file's pages from the page cache (written by the buffered
/// zero fill), so that `O_DIRECT` writes find none to invalidate.
fn drop_cache(f: &std::fs::File) {
    // SAFETY: plain syscall.
    let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(r, 0, "posix_fadvise");
}

fn zero_file(path: &std::path::Path) -> std::fs::File {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    let z = vec![0u8; 1 << 20];
    for _ in 0..FILE >> 20 {
        f.write_all(&z).unwrap();
    }
    f.sync_all().unwrap();
    f
}

fn check(r: isize, what: &str) {
    if r < 0 {
        panic!("{what}: {}", std::io::Error::last_os_error());
    }
}

fn eventfd() -> RawFd {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    check(fd as isize, "eventfd");
    fd
}

fn efd_signal(fd: RawFd) {
    let one = 1u64;
    // SAFETY: writes 8 bytes from a live u64.
    let r = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    check(r, "eventfd write");
}

fn efd_wait(fd: RawFd) {
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into a live u64.
    let r = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
    check(r, "eventfd read");
}

/// A dedicated thread that, on each request, writes (optionally) and
/// fdatasyncs, then signals back.
struct Syncer {
    req: RawFd,
    done: RawFd,
    off: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicU64>,
}

impl Syncer {
    fn new(fd: RawFd, buf: Arc<Vec<u8>>, write: bool) -> Syncer {
        let (req, done) = (eventfd(), eventfd());
        let off = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicU64::new(0));
        let (o, s) = (off.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            loop {
                efd_wait(req);
                if s.load(Ordering::Acquire) != 0 {
                    return;
                }
                if write {
                    let at = o.load(Ordering::Acquire);
                    // SAFETY: `buf` lives as long as this thread.
                    let r = unsafe {
                        libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), at as libc::off_t)
                    };
                    check(r, "pwrite");
                }
                // SAFETY: plain syscall.
                check(unsafe { libc::fdatasync(fd) } as isize, "fdatasync");
                efd_signal(done);
            }
        });
        Syncer {
            req,
            done,
            off,
            thread: Some(thread),
            stop,
        }
    }

    fn run(&self, at: u64) {
        self.off.store(at, Ordering::Release);
        efd_signal(self.req);
        efd_wait(self.done);
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.stop.store(1, Ordering::Release);
        efd_signal(self.req);
        let _ = self.thread.take().map(|t| t.join());
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    PwriteFdatasync,
    Pwritev2Dsync,
    UringLink,
    UringLinkDefer,
    UringLinkCoop,
    UringLinkSameCpu,
    UringDsync,
    UringDrain,
    UringTwoSteps,
    SyncerThread,
    PwriteSyncerSync,
    DirectUringDsync,
    DirectUringOdsync,
    DirectUringLink,
    DirectPwriteOdsync,
    DirectPwriteFdatasync,
    SyncFileRange,
}

impl Kind {
    /// The `O_DIRECT` variants, and the extra open flags of their file.
    fn direct(self) -> Option<i32> {
        match self {
            Kind::DirectUringDsync | Kind::DirectUringLink | Kind::DirectPwriteFdatasync => {
                Some(libc::O_DIRECT)
            }
            Kind::DirectUringOdsync | Kind::DirectPwriteOdsync => {
                Some(libc::O_DIRECT | libc::O_DSYNC)
            }
            _ => None,
        }
    }
}

const KINDS: [(Kind, &str); 17] = [
    (Kind::PwriteFdatasync, "pwrite+fdatasync (inline)"),
    (Kind::Pwritev2Dsync, "pwritev2 RWF_DSYNC (inline)"),
    (Kind::UringLink, "uring write+fsync linked (today)"),
    (Kind::UringLinkDefer, "uring linked, defer_taskrun"),
    (Kind::UringLinkCoop, "uring linked, coop_taskrun"),
    (
        Kind::UringLinkSameCpu,
        "uring linked, io-wq on caller's cpu",
    ),
    (Kind::UringDsync, "uring write RWF_DSYNC"),
    (Kind::UringDrain, "uring write, fsync IO_DRAIN"),
    (Kind::UringTwoSteps, "uring write; then fsync"),
    (Kind::SyncerThread, "syncer thread pwrite+fdatasync"),
    (Kind::PwriteSyncerSync, "pwrite; syncer thread fdatasync"),
    (Kind::DirectUringDsync, "O_DIRECT uring write RWF_DSYNC"),
    (Kind::DirectUringOdsync, "O_DIRECT|O_DSYNC uring write"),
    (Kind::DirectUringLink, "O_DIRECT uring write+fsync linked"),
    (Kind::DirectPwriteOdsync, "O_DIRECT|O_DSYNC pwrite (inline)"),
    (
        Kind::DirectPwriteFdatasync,
        "O_DIRECT pwrite+fdatasync (inline)",
    ),
    (Kind::SyncFileRange, "pwrite+sync_file_range (NOT durable)"),
];

struct Variant {
    kind: Kind,
    name: &'static str,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    file: std::fs::File,
    off: u64,
    ring: Option<IoUring>,
    syncer: Option<Syncer>,
    /// `O_DIRECT` variants: the blocks written, the first holding the
    /// log's partial last block.
    blocks: Option<Aligned>,
    lat: Vec<Duration>,
}

impl Variant {
    fn new(kind: Kind, name: &'static str, buf: &Arc<Vec<u8>>) -> Variant {
        let dir = tempfile::tempdir_in(bench_dir()).unwrap();
        let path = dir.path().join("f");
        let mut file = zero_file(&path);
        let mut blocks = None;
        if let Some(flags) = kind.direct() {
            use std::os::unix::fs::OpenOptionsExt;
            drop_cache(&file);
            file = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(&path)
                .unwrap();
            blocks = Some(Aligned::new(buf.len().next_multiple_of(BLOCK) + BLOCK));
        }
        let ring = match kind {
            Kind::UringLink
            | Kind::UringDsync
            | Kind::UringDrain
            | Kind::UringTwoSteps
            | Kind::DirectUringDsync
            | Kind::DirectUringOdsync
            | Kind::DirectUringLink => Some(IoUring::new(32).unwrap()),
            Kind::UringLinkDefer => Some(
                IoUring::builder()
                    .setup_single_issuer()
                    .setup_defer_taskrun()
                    .build(32)
                    .unwrap(),
            ),
            Kind::UringLinkCoop => Some(IoUring::builder().setup_coop_taskrun().build(32).unwrap()),
            Kind::UringLinkSameCpu => {
                let ring = IoUring::new(32).unwrap();
                // SAFETY: a zeroed cpu_set_t is an empty set; the CPU
                // number comes from the kernel.
                unsafe {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(libc::sched_getcpu().max(0) as usize, &mut set);
                    ring.submitter().register_iowq_aff(&set).unwrap();
                }
                Some(ring)
            }
            _ => None,
        };
        let syncer = match kind {
            Kind::SyncerThread => Some(Syncer::new(file.as_raw_fd(), buf.clone(), true)),
            Kind::PwriteSyncerSync => Some(Syncer::new(file.as_raw_fd(), buf.clone(), false)),
            _ => None,
        };
        Variant {
            kind,
            name,
            _dir: dir,
            path,
            file,
            off: 0,
            ring,
            syncer,
            blocks,
            lat: Vec::with_capacity(1 << 16),
        }
    }

    /// Untimed: a fresh file when this one is full.
    fn prepare(&mut self, len: usize) {
        if self.off + len as u64 > FILE {
            // The syncer threads hold the old descriptor: keep the file,
            // rewrite it with zeros in place instead.
            let mut f = OpenOptions::new().write(true).open(&self.path).unwrap();
            let z = vec![0u8; 1 << 20];
            for _ in 0..FILE >> 20 {
                f.write_all(&z).unwrap();
            }
            f.sync_all().unwrap();
            drop_cache(&f);
            if let Some(b) = self.blocks.as_mut() {
                b.bytes().fill(0);
            }
            self.off = 0;
        }
    }

    /// `O_DIRECT` variants: the new bytes go after the partial last block's
    /// earlier bytes (kept at the buffer's start), the rest of their last
    /// block zeros (what the file holds there); returns the aligned offset
    /// and length to write.
    fn fill_blocks(&mut self, buf: &[u8]) -> (u64, usize) {
        let start = self.off & !(BLOCK as u64 - 1);
        let head = (self.off - start) as usize;
        let end = head + buf.len();
        let len = end.next_multiple_of(BLOCK);
        let b = self.blocks.as_mut().unwrap().bytes();
        b[head..end].copy_from_slice(buf);
        b[end..len].fill(0);
        (start, len)
    }

    /// After an `O_DIRECT` write: the partial last block moves to the
    /// buffer's start for the next flush to rewrite.
    fn keep_tail(&mut self, written: usize) {
        let head = (self.off & (BLOCK as u64 - 1)) as usize;
        let end = head + written;
        let last = end & !(BLOCK - 1);
        let b = self.blocks.as_mut().unwrap().bytes();
        b.copy_within(last..end, 0);
    }

    fn flush(&mut self, buf: &[u8]) {
        let fd = self.file.as_raw_fd();
        let off = self.off;
        let len = buf.len();
        match self.kind {
            Kind::PwriteFdatasync => {
                // SAFETY: plain syscalls on a live buffer.
                check(
                    unsafe { libc::pwrite(fd, buf.as_ptr().cast(), len, off as libc::off_t) },
                    "pwrite",
                );
                check(unsafe { libc::fdatasync(fd) } as isize, "fdatasync");
            }
            Kind::Pwritev2Dsync => {
                let iov = libc::iovec {
                    iov_base: buf.as_ptr() as *mut _,
                    iov_len: len,
                };
                // SAFETY: one iovec over a live buffer.
                check(
                    unsafe { libc::pwritev2(fd, &iov, 1, off as libc::off_t, libc::RWF_DSYNC) },
                    "pwritev2",
                );
            }
            Kind::UringLink
            | Kind::UringLinkDefer
            | Kind::UringLinkCoop
            | Kind::UringLinkSameCpu => {
                let ring = self.ring.as_mut().unwrap();
                let w = opcode::Write::new(types::Fd(fd), buf.as_ptr(), len as u32)
                    .offset(off)
                    .build()
                    .flags(squeue::Flags::IO_LINK)
                    .user_data(0);
                let s = opcode::Fsync::new(types::Fd(fd))
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
                    .user_data(1);
                // SAFETY: the buffer outlives the wait below.
                unsafe {
                    ring.submission().push(&w).unwrap();
                    ring.submission().push(&s).unwrap();
                }
                ring.submit().unwrap();
                reap(ring, 2, len);
            }
            Kind::UringDsync => {
                let ring = self.ring.as_mut().unwrap();
                let w = opcode::Write::new(types::Fd(fd), buf.as_ptr(), len as u32)
                    .offset(off)
                    .rw_flags(libc::RWF_DSYNC)
                    .build()
                    .user_data(0);
                // SAFETY: as above.
                unsafe { ring.submission().push(&w).unwrap() };
                ring.submit().unwrap();
                reap(ring, 1, len);
            }
            Kind::UringDrain => {
                let ring = self.ring.as_mut().unwrap();
                let w = opcode::Write::new(types::Fd(fd), buf.as_ptr(), len as u32)
                    .offset(off)
                    .build()
                    .user_data(0);
                let s = opcode::Fsync::new(types::Fd(fd))
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
                    .flags(squeue::Flags::IO_DRAIN)
                    .user_data(1);
                // SAFETY: as above.
                unsafe {
                    ring.submission().push(&w).unwrap();
                    ring.submission().push(&s).unwrap();
                }
                ring.submit().unwrap();
                reap(ring, 2, len);
            }
            Kind::UringTwoSteps => {
                let ring = self.ring.as_mut().unwrap();
                let w = opcode::Write::new(types::Fd(fd), buf.as_ptr(), len as u32)
                    .offset(off)
                    .build()
                    .user_data(0);
                // SAFETY: as above.
                unsafe { ring.submission().push(&w).unwrap() };
                ring.submit().unwrap();
                reap(ring, 1, len);
                let s = opcode::Fsync::new(types::Fd(fd))
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
                    .user_data(1);
                // SAFETY: fsync references no memory.
                unsafe { ring.submission().push(&s).unwrap() };
                ring.submit().unwrap();
                reap(ring, 1, len);
            }
            Kind::SyncerThread => self.syncer.as_ref().unwrap().run(off),
            Kind::PwriteSyncerSync => {
                // SAFETY: plain syscall on a live buffer.
                check(
                    unsafe { libc::pwrite(fd, buf.as_ptr().cast(), len, off as libc::off_t) },
                    "pwrite",
                );
                self.syncer.as_ref().unwrap().run(off);
            }
            Kind::DirectPwriteOdsync | Kind::DirectPwriteFdatasync => {
                let (at, n) = self.fill_blocks(buf);
                let p = self.blocks.as_ref().unwrap().ptr;
                // SAFETY: `n` bytes of the aligned buffer, live.
                let r = unsafe { libc::pwrite(fd, p.cast(), n, at as libc::off_t) };
                check(r, "pwrite O_DIRECT");
                assert_eq!(r as usize, n, "short write");
                if self.kind == Kind::DirectPwriteFdatasync {
                    // SAFETY: plain syscall.
                    check(unsafe { libc::fdatasync(fd) } as isize, "fdatasync");
                }
                self.keep_tail(len);
            }
            Kind::DirectUringDsync | Kind::DirectUringOdsync | Kind::DirectUringLink => {
                let (at, n) = self.fill_blocks(buf);
                let p = self.blocks.as_ref().unwrap().ptr;
                let ring = self.ring.as_mut().unwrap();
                let mut w = opcode::Write::new(types::Fd(fd), p, n as u32).offset(at);
                if self.kind == Kind::DirectUringDsync {
                    w = w.rw_flags(libc::RWF_DSYNC);
                }
                let w = w.build().user_data(0);
                if self.kind == Kind::DirectUringLink {
                    let s = opcode::Fsync::new(types::Fd(fd))
                        .flags(types::FsyncFlags::DATASYNC)
                        .build()
                        .user_data(1);
                    // SAFETY: the buffer outlives the wait below.
                    unsafe {
                        ring.submission()
                            .push(&w.flags(squeue::Flags::IO_LINK))
                            .unwrap();
                        ring.submission().push(&s).unwrap();
                    }
                    ring.submit().unwrap();
                    reap(ring, 2, n);
                } else {
                    // SAFETY: as above.
                    unsafe { ring.submission().push(&w).unwrap() };
                    ring.submit().unwrap();
                    reap(ring, 1, n);
                }
                self.keep_tail(len);
            }
            Kind::SyncFileRange => {
                // SAFETY: plain syscalls on a live buffer.
                check(
                    unsafe { libc::pwrite(fd, buf.as_ptr().cast(), len, off as libc::off_t) },
                    "pwrite",
                );
                let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER;
                check(
                    unsafe {
                        libc::sync_file_range(fd, off as libc::off_t, len as libc::off_t, flags)
                    } as isize,
                    "sync_file_range",
                );
            }
        }
        self.off += len as u64;
    }
}

/// Waits for `n` completions, each a success (a write of `len` bytes).
fn reap(ring: &mut IoUring, n: usize, len: usize) {
    let mut got = 0;
    while got < n {
        match ring.submit_and_wait(n - got) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => panic!("submit_and_wait: {e}"),
        }
        for cqe in ring.completion() {
            let r = cqe.result();
            assert!(r >= 0, "op {} failed: {r}", cqe.user_data());
            if cqe.user_data() == 0 {
                assert_eq!(r as usize, len, "short write");
            }
            got += 1;
        }
    }
}

fn bench_dir() -> std::path::PathBuf {
    std::env::var_os("CORELOG_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir)
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo test --benches` runs this binary without `--bench`: one short
    // round of each variant is enough to show they all work.
    let full = std::env::args().any(|a| a == "--bench");
    let secs = if full {
        env_f64("CORELOG_FLUSH_SECS", 10.0)
    } else {
        0.2
    };
    let bytes = env_f64("CORELOG_FLUSH_BYTES", 128.0) as usize;
    let buf = Arc::new((0..bytes).map(|i| (i * 131 + 7) as u8).collect::<Vec<u8>>());
    // `CORELOG_FLUSH_ONLY=0,2` keeps those variants (by their row in the
    // table): to count one variant's context switches with `perf stat`.
    let only: Option<Vec<usize>> = std::env::var("CORELOG_FLUSH_ONLY")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect());
    let mut vs: Vec<Variant> = KINDS
        .iter()
        .enumerate()
        .filter(|(i, _)| match &only {
            Some(o) => o.contains(i),
            // The non-durable reference leaves written data in the device
            // cache for the next variant's flush: only on request.
            None => *i + 1 < KINDS.len(),
        })
        .map(|(_, &(k, name))| Variant::new(k, name, &buf))
        .collect();
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut round = 0usize;
    let mut order: Vec<usize> = (0..vs.len()).collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    while start.elapsed() < budget {
        // A fresh random order every round: no variant always follows the
        // same one (a fixed cycle gave the variant after the cheapest one a
        // steady edge).
        for k in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(k, (x % (k as u64 + 1)) as usize);
        }
        for &i in &order {
            let v = &mut vs[i];
            v.prepare(bytes);
            let t = Instant::now();
            v.flush(&buf);
            v.lat.push(t.elapsed());
        }
        round += 1;
    }
    // Per round, the base's latency over the variant's (both ran in that
    // round, within a few ms of each other): the median of these is the
    // paired figure, least moved by the disk's drift.
    let paired: Vec<f64> = vs
        .iter()
        .map(|v| {
            let mut r: Vec<f64> = v
                .lat
                .iter()
                .zip(&vs[0].lat)
                .map(|(x, b)| b.as_secs_f64() / x.as_secs_f64())
                .collect();
            r.sort_unstable_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect();
    let stats: Vec<(f64, Duration)> = vs
        .iter_mut()
        .map(|v| {
            let total: Duration = v.lat.iter().sum();
            v.lat.sort_unstable();
            (
                v.lat.len() as f64 / total.as_secs_f64(),
                v.lat[v.lat.len() / 2],
            )
        })
        .collect();
    let (base_rate, base_p50) = stats[0];
    println!(
        "== one {bytes}-byte durable flush, {round} rounds (random order) in {secs:.0} s; base: {} ==",
        vs[0].name
    );
    println!(
        "{:<38} {:>10} {:>10} {:>10} {:>12} {:>12} {:>8}",
        "variant", "flushes/s", "p50 us", "rate/base", "base p50/p50", "med(base/v)", "flushes"
    );
    for ((v, (rate, p50)), pr) in vs.iter().zip(&stats).zip(&paired) {
        println!(
            "{:<38} {:>10.0} {:>10.1} {:>9.0}% {:>11.0}% {:>11.0}% {:>8}",
            v.name,
            rate,
            p50.as_secs_f64() * 1e6,
            100.0 * rate / base_rate,
            100.0 * base_p50.as_secs_f64() / p50.as_secs_f64(),
            100.0 * pr,
            v.lat.len()
        );
    }
}
