//! The clients of a fault run and the history they leave: each process
//! appends unique values (decimal text records) one at a time through the
//! client library, exactly-once on; a reader reads ranges back
//! linearizably. Every operation is written to the history as it is
//! invoked and as it completes (see `history` for the shape).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use corelog::client::{Client, ClientError, ClientOptions};
use corelog::clientpb::Consistency;
use serde_json::{Value as Json, json};

/// The history file, shared by every process of one group.
pub struct History {
    start: Instant,
    out: Mutex<BufWriter<File>>,
}

impl History {
    pub fn create(path: &Path, start: Instant) -> std::io::Result<History> {
        Ok(History {
            start,
            out: Mutex::new(BufWriter::new(File::create(path)?)),
        })
    }

    fn write(&self, mut event: Json) {
        let t = self.start.elapsed().as_nanos() as u64;
        event["time"] = json!(t);
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // A history that cannot be written makes the run worthless: say so.
        writeln!(out, "{event}").expect("writing the history");
    }

    pub fn flush(&self) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.flush().expect("writing the history");
    }
}

/// A record's value as the history writes it: the decimal number it
/// holds, or (a record no client of ours wrote) its text.
pub fn record_value(bytes: &[u8]) -> Json {
    match std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(n) => json!(n),
        None => json!(String::from_utf8_lossy(bytes)),
    }
}

/// What the clients did, for the report.
#[derive(Default)]
pub struct Counts {
    pub invoked: AtomicU64,
    pub ok: AtomicU64,
    pub info: AtomicU64,
    pub reads: AtomicU64,
}

pub struct Workload {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub counts: Arc<Counts>,
}

fn client(servers: &[SocketAddr]) -> Option<Client> {
    Client::connect(
        servers,
        ClientOptions {
            timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(1),
            auth: crate::run::client_auth(),
            ..ClientOptions::default()
        },
    )
    .ok()
}

impl Workload {
    /// `processes` appenders and one reader on `group`.
    pub fn start(
        servers: Vec<SocketAddr>,
        group: u64,
        processes: u64,
        history: Arc<History>,
        values: Arc<AtomicU64>,
    ) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let mut threads = Vec::new();
        for p in 0..processes {
            let (servers, history, values, stop, counts) = (
                servers.clone(),
                history.clone(),
                values.clone(),
                stop.clone(),
                counts.clone(),
            );
            threads.push(std::thread::spawn(move || {
                appender(
                    &servers, group, p, processes, &history, &values, &stop, &counts,
                )
            }));
        }
        let (h, s, c) = (history.clone(), stop.clone(), counts.clone());
        threads.push(std::thread::spawn(move || {
            reader(&servers, group, processes, &h, &s, &c)
        }));
        Workload {
            stop,
            threads,
            counts,
        }
    }

    /// Stops every process after its operation in flight completes.
    pub fn stop(self) -> Arc<Counts> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.counts
    }
}

#[allow(clippy::too_many_arguments)]
fn appender(
    servers: &[SocketAddr],
    group: u64,
    first: u64,
    stride: u64,
    history: &History,
    values: &AtomicU64,
    stop: &AtomicBool,
    counts: &Counts,
) {
    // A process whose operation ended indeterminate is replaced by a new
    // one (Jepsen's rule: that process may still have it in flight).
    let mut process = first;
    let mut c: Option<Client> = None;
    while !stop.load(Ordering::Relaxed) {
        if c.is_none() {
            c = client(servers);
            if c.is_none() {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        let cl = c.as_ref().expect("connected above");
        let v = values.fetch_add(1, Ordering::Relaxed);
        let text = v.to_string();
        history.write(json!({"type": "invoke", "process": process, "f": "append", "value": v}));
        counts.invoked.fetch_add(1, Ordering::Relaxed);
        match cl.append(group, &[text.as_bytes()]) {
            Ok(a) => {
                counts.ok.fetch_add(1, Ordering::Relaxed);
                history.write(json!({"type": "ok", "process": process, "f": "append",
                    "value": v, "offset": a.base_offset}));
            }
            // Refused before it was sent: it cannot have happened.
            Err(ClientError::TooLarge(_)) => {
                history
                    .write(json!({"type": "fail", "process": process, "f": "append", "value": v}));
            }
            Err(e) => {
                counts.info.fetch_add(1, Ordering::Relaxed);
                history.write(json!({"type": "info", "process": process, "f": "append",
                    "value": v, "error": e.to_string()}));
                process += stride + 1;
                // A fresh client: new connections, new producer id.
                c = None;
            }
        }
    }
}

fn reader(
    servers: &[SocketAddr],
    group: u64,
    process: u64,
    history: &History,
    stop: &AtomicBool,
    counts: &Counts,
) {
    let mut c: Option<Client> = None;
    let mut latest = 0u64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ group;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if c.is_none() {
            c = client(servers);
            continue;
        }
        let cl = c.as_ref().expect("connected above");
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let from = x % (latest + 1);
        history.write(json!({"type": "invoke", "process": process, "f": "read", "from": from}));
        match cl.read(group, from, 20, Consistency::Linearizable) {
            Ok(r) => {
                latest = latest.max(r.latest);
                // Only the contiguous run from `from` on is a read of
                // `from` (below the earliest offset nothing comes back).
                let values: Vec<Json> = r
                    .records
                    .iter()
                    .enumerate()
                    .take_while(|(k, (o, _))| *o == from + *k as u64)
                    .map(|(_, (_, rec))| record_value(rec))
                    .collect();
                counts.reads.fetch_add(1, Ordering::Relaxed);
                history.write(json!({"type": "ok", "process": process, "f": "read",
                    "from": from, "values": values}));
            }
            Err(e) => {
                history.write(json!({"type": "info", "process": process, "f": "read",
                    "from": from, "error": e.to_string()}));
                c = None;
            }
        }
    }
}
