//! `AsyncClient`: the client for async code, on any runtime (tokio,
//! async-std, smol, a hand-rolled executor): every call is a future that
//! never blocks the thread polling it.
//!
//! How: the calls that wait on the network (redirects, retries, backoff)
//! run as the synchronous `Client`'s calls on the async client's own
//! worker threads, and their answers come back through a `Completion`,
//! which wakes the awaiting task. A call therefore holds a worker while it
//! waits, so `workers` bounds the calls in flight at once (the rest queue
//! for a worker, still without blocking their tasks). For many appends in
//! flight, use `producer`: its `send` queues a record at once and its
//! handle is a future, so thousands of records wait on one producer
//! thread and a few batches, not on workers. A tail runs on a thread of
//! its own (`tail`).

use std::net::SocketAddr;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::completion::{Completer, completion};
use super::producer::{Producer, ProducerOptions};
use super::{Appended, Client, ClientError, ClientOptions, ReadResult};
use crate::clientpb::{self, Consistency, MembershipChange};

type Job = Box<dyn FnOnce(&Client) + Send>;

/// The client for async code (see the module doc). Cheap to share: wrap
/// it in an `Arc`.
pub struct AsyncClient {
    client: Arc<Client>,
    jobs: Mutex<Sender<Job>>,
}

/// Worker threads of `AsyncClient::connect`: calls in flight at once.
pub const DEFAULT_WORKERS: usize = 16;

fn gone() -> ClientError {
    ClientError::Disconnected("the async client's workers stopped".into())
}

impl AsyncClient {
    /// Connects through any of `servers` (as `Client::connect`, on a
    /// thread of its own) with `DEFAULT_WORKERS` workers.
    pub async fn connect(
        servers: &[SocketAddr],
        opts: ClientOptions,
    ) -> Result<AsyncClient, ClientError> {
        let servers = servers.to_vec();
        let (done, wait) = completion();
        std::thread::Builder::new()
            .name("corelog-connect".into())
            .spawn(move || done.complete(Client::connect(&servers, opts)))
            .map_err(|e| ClientError::Connect(format!("spawning a thread: {e}")))?;
        let client = wait.await.ok_or_else(gone)??;
        AsyncClient::new(Arc::new(client), DEFAULT_WORKERS)
    }

    /// Serves async calls through `client` with `workers` threads.
    pub fn new(client: Arc<Client>, workers: usize) -> Result<AsyncClient, ClientError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for k in 0..workers.max(1) {
            let (c, rx) = (client.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("corelog-async-{k}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take the next job.
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(&c),
                            // Every sender dropped: the client is gone.
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| ClientError::Connect(format!("spawning a worker: {e}")))?;
        }
        Ok(AsyncClient {
            client,
            jobs: Mutex::new(tx),
        })
    }

    /// The synchronous client underneath (for `Producer`s, or code that
    /// may block).
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// Runs `f` on a worker; its result when done.
    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Client) -> Result<R, ClientError> + Send + 'static,
    ) -> Result<R, ClientError> {
        let (done, wait) = completion::<Result<R, ClientError>>();
        let job: Job = Box::new(move |c| done.complete(f(c)));
        let sent = match self.jobs.lock() {
            Ok(j) => j.send(job),
            Err(p) => p.into_inner().send(job),
        };
        // A job that could not be sent drops its completer: the wait
        // below ends with `None`.
        drop(sent);
        wait.await.ok_or_else(gone)?
    }

    /// Appends `records` as one batch to `group` (exactly once, as
    /// `Client::append`).
    pub async fn append(&self, group: u64, records: Vec<Bytes>) -> Result<Appended, ClientError> {
        self.run(move |c| {
            let refs: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
            c.append(group, &refs)
        })
        .await
    }

    /// Reads committed records from `offset` (as `Client::read`).
    pub async fn read(
        &self,
        group: u64,
        offset: u64,
        max_records: u32,
        consistency: Consistency,
    ) -> Result<ReadResult, ClientError> {
        self.run(move |c| c.read(group, offset, max_records, consistency))
            .await
    }

    pub async fn group_status(&self, group: u64) -> Result<clientpb::GroupStatus, ClientError> {
        self.run(move |c| c.group_status(group)).await
    }

    pub async fn cluster_status(&self) -> Result<clientpb::ClusterStatus, ClientError> {
        self.run(|c| c.cluster_status()).await
    }

    pub async fn truncate(&self, group: u64, before_offset: u64) -> Result<u64, ClientError> {
        self.run(move |c| c.truncate(group, before_offset)).await
    }

    pub async fn transfer_leader(&self, group: u64, to: u64) -> Result<(), ClientError> {
        self.run(move |c| c.transfer_leader(group, to)).await
    }

    pub async fn membership(
        &self,
        group: u64,
        change: MembershipChange,
        member: u64,
    ) -> Result<(), ClientError> {
        self.run(move |c| c.membership(group, change, member)).await
    }

    /// A batching producer of `group`'s records: `send` returns at once
    /// (it blocks only while `max_queued` records wait for a batch), and
    /// its handle is a future of the record's offset.
    pub fn producer(&self, group: u64, opts: ProducerOptions) -> Producer {
        Producer::new(self.client.clone(), group, opts)
    }

    /// Follows `group` from `offset` (as `Client::tail`), on a thread of
    /// the tail's own that stops when the `AsyncTail` is dropped.
    pub fn tail(&self, group: u64, offset: u64) -> Result<AsyncTail, ClientError> {
        let (tx, rx) = mpsc::channel::<(Duration, Completer<TailAnswer>)>();
        let client = self.client.clone();
        std::thread::Builder::new()
            .name(format!("corelog-tail-{group}"))
            .spawn(move || {
                let mut tail = client.tail(group, offset);
                while let Ok((timeout, done)) = rx.recv() {
                    done.complete(tail.next(timeout));
                }
            })
            .map_err(|e| ClientError::Connect(format!("spawning a tail thread: {e}")))?;
        Ok(AsyncTail { requests: tx })
    }
}

type TailAnswer = Result<Vec<(u64, Bytes)>, ClientError>;

/// A tail for async code (`AsyncClient::tail`).
pub struct AsyncTail {
    requests: Sender<(Duration, Completer<TailAnswer>)>,
}

impl AsyncTail {
    /// The next records (at least one), waiting at most `timeout`
    /// (`Timeout` if none was committed meanwhile), as `Tail::next`.
    pub async fn next(&mut self, timeout: Duration) -> TailAnswer {
        let (done, wait) = completion();
        if self.requests.send((timeout, done)).is_err() {
            return Err(ClientError::Disconnected(
                "the tail's thread stopped".into(),
            ));
        }
        wait.await.unwrap_or_else(|| {
            Err(ClientError::Disconnected(
                "the tail's thread stopped".into(),
            ))
        })
    }
}
