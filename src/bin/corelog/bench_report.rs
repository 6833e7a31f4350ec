//! The load generator's reports: what one measured phase counted (requests,
//! records, bytes, errors by kind, a latency histogram in microseconds) and
//! its three renderings: the human report, one JSON object (`--json`), and
//! HdrHistogram's percentile distribution text (`--hgrm`).
//!
//! Self-contained (std and hdrhistogram only): tools/vs-etcd includes this
//! file by path, so etcd's figures are computed and printed by the same
//! code as corelog's.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, up to a minute, 3 significant
/// digits (0.1% resolution at any size).
pub const HIST_MAX_US: u64 = 60_000_000;

pub fn new_histogram() -> Histogram<u64> {
    // Both bounds are constants within hdrhistogram's limits.
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("constant histogram bounds")
}

/// Records `us` (clamped into the histogram's range: a latency beyond a
/// minute counts as a minute rather than disappearing).
pub fn record_us(h: &mut Histogram<u64>, us: u64) {
    let _ = h.record(us.clamp(1, HIST_MAX_US));
}

/// Error kinds the reports count, by name. Fixed, so a load loop counts
/// into an array without allocating. `not_sent`: an open loop's requests
/// that were due before the end but never sent (the generator fell behind
/// its rate: every slot was busy). `other` stays last (the fallback).
pub const ERROR_KINDS: [&str; 14] = [
    "timeout",
    "disconnected",
    "connect",
    "busy",
    "unavailable",
    "not_leader",
    "group_not_found",
    "too_large",
    "protocol",
    "no_member",
    "unauthorized",
    "server_other",
    "not_sent",
    "other",
];

/// `not_sent`'s index in `ERROR_KINDS`.
pub const NOT_SENT: usize = ERROR_KINDS.len() - 2;

/// Counts of one phase (one worker's, or all of them added up).
#[derive(Debug, Clone)]
pub struct Counts {
    /// Requests answered with success.
    pub requests: u64,
    pub records: u64,
    /// Payload bytes of those records.
    pub bytes: u64,
    pub errors: [u64; ERROR_KINDS.len()],
    pub hist: Histogram<u64>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            requests: 0,
            records: 0,
            bytes: 0,
            errors: [0; ERROR_KINDS.len()],
            hist: new_histogram(),
        }
    }
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.requests += o.requests;
        self.records += o.records;
        self.bytes += o.bytes;
        for (a, b) in self.errors.iter_mut().zip(o.errors.iter()) {
            *a += b;
        }
        // Same bounds on both sides: cannot fail.
        let _ = self.hist.add(&o.hist);
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }
}

/// A JSON value of a report's settings.
#[derive(Debug, Clone)]
pub enum Value {
    U(u64),
    F(f64),
    S(String),
    B(bool),
    Null,
}

/// One measured phase, ready to print.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was measured ("append", "read", "tail", "put").
    pub workload: &'static str,
    /// One line saying what ran (printed first).
    pub title: String,
    /// Settings of the run, as JSON fields (in this order).
    pub settings: Vec<(&'static str, Value)>,
    /// Seconds the counted requests took: from the end of the warm-up to
    /// the last counted answer.
    pub elapsed_s: f64,
    pub counts: Counts,
    /// CPU seconds this process (the load generator, not the servers)
    /// spent during the run, and the run's wall-clock seconds: whether
    /// the client side was in the way.
    pub client_cpu: Option<(f64, f64)>,
    /// Other phases of the same run (the appends under a tail, the fill
    /// before a catch-up read), nested in the JSON under their workload.
    pub nested: Vec<Report>,
}

/// The percentiles every report gives, as (label, quantile, JSON name).
pub const PERCENTILES: [(&str, f64, &str); 5] = [
    ("p50", 0.5, "p50"),
    ("p90", 0.9, "p90"),
    ("p99", 0.99, "p99"),
    ("p99.9", 0.999, "p99_9"),
    ("p99.99", 0.9999, "p99_99"),
];

fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1e3)
}

impl Report {
    pub fn records_per_s(&self) -> f64 {
        per_s(self.counts.records, self.elapsed_s)
    }

    pub fn requests_per_s(&self) -> f64 {
        per_s(self.counts.requests, self.elapsed_s)
    }

    /// Payload megabytes (10^6) per second.
    pub fn mb_per_s(&self) -> f64 {
        per_s(self.counts.bytes, self.elapsed_s) / 1e6
    }

    /// The human report: the title, throughput, latency, errors by kind.
    pub fn text(&self) -> String {
        let c = &self.counts;
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.title);
        let _ = writeln!(
            s,
            "  {:.0} records/s, {:.2} MB/s, {:.0} requests/s ({} records in {:.2} s), {} failed",
            self.records_per_s(),
            self.mb_per_s(),
            self.requests_per_s(),
            c.records,
            self.elapsed_s,
            c.errors_total()
        );
        let mut lat = String::from("  latency:");
        for (label, q, _) in PERCENTILES {
            let _ = write!(lat, " {label} {},", ms(c.hist.value_at_quantile(q)));
        }
        let _ = writeln!(s, "{lat} max {}", ms(c.hist.max()));
        let _ = writeln!(s, "  errors: {}", self.errors_line());
        if let Some((cpu, wall)) = self.client_cpu {
            let _ = writeln!(
                s,
                "  load generator: {cpu:.2} s of CPU in {wall:.2} s ({:.0}% of one CPU)",
                100.0 * cpu / wall.max(1e-9)
            );
        }
        for n in &self.nested {
            s.push_str(&n.text());
        }
        s
    }

    /// "none", or "timeout 3, busy 1".
    pub fn errors_line(&self) -> String {
        let parts: Vec<String> = ERROR_KINDS
            .iter()
            .zip(self.counts.errors.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }

    /// One JSON object (fields documented in docs/benchmarks.md).
    pub fn json(&self) -> String {
        let c = &self.counts;
        let mut o = JsonObject::default();
        o.field("workload", &Value::S(self.workload.into()));
        for (k, v) in &self.settings {
            o.field(k, v);
        }
        o.field("elapsed_s", &Value::F(self.elapsed_s));
        o.field("requests", &Value::U(c.requests));
        o.field("records", &Value::U(c.records));
        o.field("bytes", &Value::U(c.bytes));
        o.field("records_per_s", &Value::F(self.records_per_s()));
        o.field("mb_per_s", &Value::F(self.mb_per_s()));
        o.field("requests_per_s", &Value::F(self.requests_per_s()));
        let mut lat = JsonObject::default();
        lat.field("count", &Value::U(c.hist.len()));
        lat.field("min", &Value::U(c.hist.min()));
        lat.field("mean", &Value::F(c.hist.mean()));
        for (_, q, name) in PERCENTILES {
            lat.field(name, &Value::U(c.hist.value_at_quantile(q)));
        }
        lat.field("max", &Value::U(c.hist.max()));
        o.raw("latency_us", &lat.finish());
        let mut errs = JsonObject::default();
        for (k, n) in ERROR_KINDS.iter().zip(c.errors.iter()) {
            errs.field(k, &Value::U(*n));
        }
        o.raw("errors", &errs.finish());
        o.field("errors_total", &Value::U(c.errors_total()));
        if let Some((cpu, wall)) = self.client_cpu {
            o.field("client_cpu_s", &Value::F(cpu));
            o.field("client_wall_s", &Value::F(wall));
        }
        for n in &self.nested {
            o.raw(n.workload, &n.json());
        }
        o.finish()
    }
}

/// CPU seconds (user and system) this process has used so far; its
/// children (a local cluster's servers) are not in it.
pub fn process_cpu_s() -> f64 {
    // SAFETY: getrusage(2) fills the struct it is given; a zeroed rusage
    // is a valid value of it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// A JSON object written field by field.
#[derive(Default)]
struct JsonObject {
    s: String,
}

impl JsonObject {
    fn key(&mut self, k: &str) {
        self.s.push(if self.s.is_empty() { '{' } else { ',' });
        push_json_string(&mut self.s, k);
        self.s.push(':');
    }

    fn field(&mut self, k: &str, v: &Value) {
        self.key(k);
        match v {
            Value::U(n) => {
                let _ = write!(self.s, "{n}");
            }
            // JSON has no NaN or infinity.
            Value::F(x) if x.is_finite() => {
                let _ = write!(self.s, "{x}");
            }
            Value::F(_) | Value::Null => self.s.push_str("null"),
            Value::S(t) => push_json_string(&mut self.s, t),
            Value::B(b) => {
                let _ = write!(self.s, "{b}");
            }
        }
    }

    fn raw(&mut self, k: &str, json: &str) {
        self.key(k);
        self.s.push_str(json);
    }

    fn finish(mut self) -> String {
        if self.s.is_empty() {
            self.s.push('{');
        }
        self.s.push('}');
        self.s
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// HdrHistogram's percentile distribution text (the format of Java's
/// `outputPercentileDistribution`, which HdrHistogram's plotters read):
/// values in milliseconds, 5 steps per halving of the distance to 100%.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let scale = 1e3; // microseconds recorded, milliseconds written
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let value = v.value_iterated_to() as f64 / scale;
        total += v.count_since_last_iteration();
        if q < 1.0 {
            let _ = writeln!(
                s,
                "{value:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10}");
        }
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / scale,
        h.stdev() / scale
    );
    let _ = writeln!(
        s,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / scale,
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        // HdrHistogram's sub-bucket count: 2 * 10^sigfig rounded up to a
        // power of two (2048 for 3 digits).
        (2u64 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two()
    );
    s
}
