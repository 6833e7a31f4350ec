//! The append load: workers that keep requests in flight and count what
//! comes back, and the live line printed every second.
//!
//! One worker per connection (`--connections`; each worker has a `Client`
//! of its own, so its requests travel on its own TCP connections). A
//! worker's requests go round the groups in turn.
//!
//! - Closed loop: one thread per worker keeps `--inflight` requests in
//!   flight; a request's latency runs from its send to its answer.
//! - Open loop (`--rate`): two threads per worker, one sending at fixed
//!   intervals (never more than `--inflight` in flight), one taking the
//!   answers. Latency runs from the request's *intended* send time, so a
//!   request the generator could not send on time (the server was slow to
//!   free a slot) is charged for its wait: no coordinated omission.
//!
//! Answers are taken in send order; one that came back before an older one
//! is counted when the older one is, so a latency is never understated.
//! The load loops allocate nothing per record: a request's batch is built
//! once and shared (a reference count), or, when records carry their send
//! time (the tail workload), rebuilt per request in one reused builder.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use corelog::client::{
    Client, ClientError, PendingAppend, Producer, ProducerOptions, RecordHandle,
};
use corelog::clientpb::error::Kind;
use corelog::log::{BatchBuilder, BatchLimits};
use hdrhistogram::Histogram;

use super::bench_report::{self, Counts, ERROR_KINDS, NOT_SENT};

/// When the measured part ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this long (past the warm-up).
    For(Duration),
    /// After this many records (past the warm-up).
    Records(u64),
}

/// What one load run does.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub groups: u64,
    pub inflight: usize,
    pub records_per_request: usize,
    pub record_bytes: usize,
    /// Open loop: requests per second, all workers together.
    pub rate: Option<f64>,
    pub warmup: Duration,
    pub stop: Stop,
    /// Each record starts with its request's send time (nanoseconds since
    /// `Shared::epoch`, little-endian), for the tail workload.
    pub stamp: bool,
    /// Single records through the client's batching `Producer`.
    pub producer: bool,
    /// Print the live line every second (on stderr).
    pub live: bool,
    /// The live line's label ("append", ...).
    pub label: &'static str,
}

/// What one worker's live counters hold since the last live line.
pub struct Live {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    pub hist: Mutex<Histogram<u64>>,
}

impl Live {
    pub fn new() -> Live {
        Live {
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            hist: Mutex::new(bench_report::new_histogram()),
        }
    }

    fn answer(&self, records: u64, bytes: u64, us: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Ok(mut h) = self.hist.lock() {
            bench_report::record_us(&mut h, us);
        }
    }
}

/// The clock and the stop conditions all workers share.
pub struct Shared {
    /// The run's start; record stamps count from it.
    pub epoch: Instant,
    /// The end of the warm-up: requests sent from here on are counted.
    pub measure_from: Instant,
    /// `Stop::For`: no request is sent from here on.
    end: Option<Instant>,
    /// `Stop::Records`: counted requests still to send.
    budget: AtomicI64,
    /// Set when the load should stop sending (budget spent, or asked).
    pub stop: AtomicBool,
}

impl Shared {
    pub fn new(spec: &LoadSpec) -> Shared {
        let epoch = Instant::now();
        let measure_from = epoch + spec.warmup;
        let (end, budget) = match spec.stop {
            Stop::For(d) => (Some(measure_from + d), i64::MAX),
            Stop::Records(n) => {
                let per = spec.records_per_request.max(1) as u64;
                (None, i64::try_from(n.div_ceil(per)).unwrap_or(i64::MAX))
            }
        };
        Shared {
            epoch,
            measure_from,
            end,
            budget: AtomicI64::new(budget),
            stop: AtomicBool::new(false),
        }
    }

    /// A clock for a phase with no warm-up and no stop of its own (reads).
    pub fn starting_now() -> Shared {
        let epoch = Instant::now();
        Shared {
            epoch,
            measure_from: epoch,
            end: None,
            budget: AtomicI64::new(i64::MAX),
            stop: AtomicBool::new(false),
        }
    }

    /// Whether a request meant for `at` may be sent, and if so whether it
    /// is counted (`Some(true)`) or warm-up (`Some(false)`).
    fn may_send(&self, at: Instant) -> Option<bool> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        if super::bench_interrupt::interrupted() {
            self.stop.store(true, Ordering::Relaxed);
            return None;
        }
        if at < self.measure_from {
            return Some(false);
        }
        if let Some(end) = self.end {
            return (at < end).then_some(true);
        }
        if self.budget.fetch_sub(1, Ordering::Relaxed) > 0 {
            Some(true)
        } else {
            self.stop.store(true, Ordering::Relaxed);
            None
        }
    }
}

/// The error kind's index in `ERROR_KINDS`.
pub fn kind_of(e: &ClientError) -> usize {
    let name = match e {
        ClientError::Timeout => "timeout",
        ClientError::Disconnected(_) => "disconnected",
        ClientError::Connect(_) => "connect",
        ClientError::Protocol(_) => "protocol",
        ClientError::TooLarge(_) => "too_large",
        ClientError::NoMember(_) => "no_member",
        ClientError::Unauthorized(_) => "unauthorized",
        ClientError::Server(k) => match k {
            Kind::Busy(_) => "busy",
            Kind::Unavailable(_) => "unavailable",
            Kind::Timeout(_) => "timeout",
            Kind::NotLeader(_) => "not_leader",
            Kind::GroupNotFound(_) => "group_not_found",
            Kind::TooLarge(_) => "too_large",
            _ => "server_other",
        },
    };
    ERROR_KINDS
        .iter()
        .position(|k| *k == name)
        .unwrap_or(ERROR_KINDS.len() - 1)
}

/// One kind of request a worker sends: appends of a ready batch, or
/// single records through a `Producer`.
trait Op: Sync {
    type Pending: Send;
    /// Sends request `k` (meant for `at`) to `group`.
    fn send(&self, group: u64, at: Instant) -> Self::Pending;
    /// Its answer: Ok, or the error kind's index.
    fn wait(&self, p: Self::Pending) -> Result<(), usize>;
}

struct AppendOp<'a> {
    client: &'a Client,
    batch: Bytes,
    /// Rebuilds the batch per request with the send time in each record.
    stamped: Option<Mutex<Stamper>>,
}

struct Stamper {
    builder: BatchBuilder,
    record: Vec<u8>,
    records: usize,
    epoch: Instant,
}

impl Stamper {
    fn batch(&mut self, at: Instant) -> Option<Bytes> {
        let ns = at.saturating_duration_since(self.epoch).as_nanos() as u64;
        self.record[..8].copy_from_slice(&ns.to_le_bytes());
        let mut w = self.builder.start(0, 0, 0);
        for _ in 0..self.records {
            w.push(&self.record).ok()?;
        }
        w.finish().ok()
    }
}

impl<'a> Op for AppendOp<'a> {
    type Pending = PendingAppend<'a>;

    fn send(&self, group: u64, at: Instant) -> PendingAppend<'a> {
        let batch = match &self.stamped {
            Some(s) => match s.lock() {
                Ok(mut s) => s.batch(at).unwrap_or_else(|| self.batch.clone()),
                Err(_) => self.batch.clone(),
            },
            None => self.batch.clone(),
        };
        self.client.send_append(group, batch)
    }

    fn wait(&self, p: PendingAppend<'a>) -> Result<(), usize> {
        p.wait().map(|_| ()).map_err(|e| kind_of(&e))
    }
}

struct ProducerOp<'a> {
    /// One producer per group.
    producers: Vec<Producer>,
    record: &'a [u8],
}

impl Op for ProducerOp<'_> {
    type Pending = RecordHandle;

    fn send(&self, group: u64, _at: Instant) -> RecordHandle {
        self.producers[group as usize].send(self.record)
    }

    fn wait(&self, p: RecordHandle) -> Result<(), usize> {
        p.wait().map(|_| ()).map_err(|e| kind_of(&e))
    }
}

/// What a worker counted, and when its last counted answer came.
struct WorkerResult {
    counts: Counts,
    last: Option<Instant>,
}

/// One request's bookkeeping between its send and its answer.
struct InFlight<P> {
    /// Latency runs from here (the send, or the intended send).
    from: Instant,
    counted: bool,
    pending: P,
}

fn take_answer<O: Op>(
    op: &O,
    f: InFlight<O::Pending>,
    per_request: (u64, u64),
    live: &Live,
    out: &mut WorkerResult,
) {
    let r = op.wait(f.pending);
    let done = Instant::now();
    let us = done.saturating_duration_since(f.from).as_micros() as u64;
    match r {
        Ok(()) => {
            live.answer(per_request.0, per_request.1, us);
            if f.counted {
                out.counts.requests += 1;
                out.counts.records += per_request.0;
                out.counts.bytes += per_request.1;
                bench_report::record_us(&mut out.counts.hist, us);
                out.last = Some(done);
            }
        }
        Err(kind) => {
            live.errors.fetch_add(1, Ordering::Relaxed);
            if f.counted {
                out.counts.errors[kind] += 1;
                out.last = Some(done);
            }
        }
    }
}

fn closed_loop<O: Op>(
    op: &O,
    w: usize,
    spec: &LoadSpec,
    shared: &Shared,
    live: &Live,
) -> WorkerResult {
    let per = per_request(spec);
    let mut out = WorkerResult {
        counts: Counts::default(),
        last: None,
    };
    let mut q: VecDeque<InFlight<O::Pending>> = VecDeque::with_capacity(spec.inflight);
    let mut k = w as u64;
    loop {
        while q.len() < spec.inflight {
            let now = Instant::now();
            let Some(counted) = shared.may_send(now) else {
                break;
            };
            let pending = op.send(k % spec.groups, now);
            k += 1;
            q.push_back(InFlight {
                from: now,
                counted,
                pending,
            });
        }
        let Some(f) = q.pop_front() else {
            break;
        };
        take_answer(op, f, per, live, &mut out);
    }
    out
}

fn open_loop<O: Op>(
    op: &O,
    w: usize,
    workers: usize,
    spec: &LoadSpec,
    shared: &Shared,
    live: &Live,
) -> WorkerResult {
    let per = per_request(spec);
    let rate = spec.rate.unwrap_or(1.0) / workers as f64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let in_flight = AtomicU64::new(0);
    // Bounded by the in-flight limit the sender keeps, so never blocks.
    let (tx, rx) = mpsc::sync_channel::<InFlight<O::Pending>>(spec.inflight);
    std::thread::scope(|s| {
        let in_flight = &in_flight;
        let sender = s.spawn(move || {
            // Workers start spread over one interval.
            let mut at = shared.epoch + interval.mul_f64(w as f64 / workers as f64);
            let mut k = w as u64;
            // Past the run's end in real time (the sender fell behind):
            // the counted sends still due are not made but counted, so a
            // rate out of reach ends the run on time and shows in the
            // report instead of stretching it by every overdue request.
            let unsent_from = |at: Instant| -> Option<u64> {
                let end = shared.end?;
                if Instant::now() < end {
                    return None;
                }
                let from = at.max(shared.measure_from);
                let behind = end.saturating_duration_since(from).as_secs_f64();
                Some((behind / interval.as_secs_f64()).ceil() as u64)
            };
            loop {
                let now = Instant::now();
                if now < at {
                    std::thread::sleep(at - now);
                }
                let Some(counted) = shared.may_send(at) else {
                    return 0;
                };
                // All slots taken: wait for one (charged to the latency,
                // which runs from `at`).
                while in_flight.load(Ordering::Acquire) >= spec.inflight as u64 {
                    if shared.stop.load(Ordering::Relaxed) {
                        return 0;
                    }
                    if let Some(n) = unsent_from(at) {
                        return n;
                    }
                    std::thread::sleep(Duration::from_micros(20));
                }
                if let Some(n) = unsent_from(at) {
                    return n;
                }
                let pending = op.send(k % spec.groups, at);
                k += 1;
                in_flight.fetch_add(1, Ordering::AcqRel);
                if tx
                    .send(InFlight {
                        from: at,
                        counted,
                        pending,
                    })
                    .is_err()
                {
                    return 0;
                }
                at += interval;
            }
        });
        let mut out = WorkerResult {
            counts: Counts::default(),
            last: None,
        };
        for f in rx {
            take_answer(op, f, per, live, &mut out);
            in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        let unsent = match sender.join() {
            Ok(n) => n,
            Err(p) => std::panic::resume_unwind(p),
        };
        out.counts.errors[NOT_SENT] += unsent;
        live.errors.fetch_add(unsent, Ordering::Relaxed);
        out
    })
}

fn per_request(spec: &LoadSpec) -> (u64, u64) {
    let r = if spec.producer {
        1
    } else {
        spec.records_per_request as u64
    };
    (r, r * spec.record_bytes as u64)
}

fn run_worker<O: Op>(
    op: &O,
    w: usize,
    workers: usize,
    spec: &LoadSpec,
    shared: &Shared,
    live: &Live,
) -> WorkerResult {
    if spec.rate.is_some() {
        open_loop(op, w, workers, spec, shared, live)
    } else {
        closed_loop(op, w, spec, shared, live)
    }
}

/// A batch of `spec.records_per_request` records of `spec.record_bytes`.
pub fn batch_of(spec: &LoadSpec) -> Result<Bytes, String> {
    let record = vec![b'x'; spec.record_bytes];
    let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
    let mut w = b.start(0, 0, 0);
    for _ in 0..spec.records_per_request {
        w.push(&record)
            .map_err(|e| format!("--records-per-request x --record-bytes: {e}"))?;
    }
    w.finish()
        .map_err(|e| format!("--records-per-request x --record-bytes: {e}"))
}

/// Runs the load on `clients` (one worker each) and adds up what the
/// workers counted; the seconds from the end of the warm-up to the last
/// counted answer.
pub fn run(clients: &[Arc<Client>], spec: &LoadSpec, shared: &Shared) -> (Counts, f64) {
    let batch = match batch_of(spec) {
        Ok(b) => b,
        // Checked by the caller before any server was started.
        Err(_) => Bytes::new(),
    };
    let record = vec![b'x'; spec.record_bytes];
    let lives: Vec<Live> = clients.iter().map(|_| Live::new()).collect();
    let done = AtomicBool::new(false);
    let workers = clients.len();
    let results: Vec<WorkerResult> = std::thread::scope(|s| {
        if spec.live {
            let (lives, done) = (&lives, &done);
            s.spawn(move || live_lines(spec.label, shared, lives, done));
        }
        let hs: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(w, client)| {
                let (batch, record, live) = (batch.clone(), &record, &lives[w]);
                s.spawn(move || {
                    if spec.producer {
                        let op = ProducerOp {
                            producers: (0..spec.groups)
                                .map(|g| {
                                    Producer::new(client.clone(), g, ProducerOptions::default())
                                })
                                .collect(),
                            record,
                        };
                        return run_worker(&op, w, workers, spec, shared, live);
                    }
                    let stamped = spec.stamp.then(|| {
                        Mutex::new(Stamper {
                            builder: BatchBuilder::new(BatchLimits::DEFAULT),
                            record: record.clone(),
                            records: spec.records_per_request,
                            epoch: shared.epoch,
                        })
                    });
                    let op = AppendOp {
                        client,
                        batch,
                        stamped,
                    };
                    run_worker(&op, w, workers, spec, shared, live)
                })
            })
            .collect();
        let r = hs
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect();
        done.store(true, Ordering::Relaxed);
        r
    });
    let mut total = Counts::default();
    let mut last: Option<Instant> = None;
    for r in &results {
        total.add(&r.counts);
        last = last.max(r.last);
    }
    let elapsed = last.map_or(0.0, |l| {
        l.saturating_duration_since(shared.measure_from)
            .as_secs_f64()
    });
    (total, elapsed)
}

/// Every second, on stderr: what came back during that second.
pub fn live_lines(label: &str, shared: &Shared, lives: &[Live], done: &AtomicBool) {
    let mut h = bench_report::new_histogram();
    let mut last = Instant::now();
    let mut next = last + Duration::from_secs(1);
    while !done.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        let secs = now.saturating_duration_since(last).as_secs_f64();
        last = now;
        next += Duration::from_secs(1);
        h.reset();
        let (mut recs, mut bytes, mut errs) = (0u64, 0u64, 0u64);
        for l in lives {
            recs += l.records.swap(0, Ordering::Relaxed);
            bytes += l.bytes.swap(0, Ordering::Relaxed);
            errs += l.errors.swap(0, Ordering::Relaxed);
            if let Ok(mut lh) = l.hist.lock() {
                let _ = h.add(&*lh);
                lh.reset();
            }
        }
        let t = now.saturating_duration_since(shared.epoch).as_secs_f64();
        let phase = if now < shared.measure_from {
            " (warm-up)"
        } else {
            ""
        };
        eprintln!(
            "[{t:5.1} s] {label}{phase}: {:.0} records/s, {:.2} MB/s, p50 {:.3} ms, p99 {:.3} ms, {errs} errors",
            recs as f64 / secs,
            bytes as f64 / secs / 1e6,
            h.value_at_quantile(0.5) as f64 / 1e3,
            h.value_at_quantile(0.99) as f64 / 1e3,
        );
    }
}
