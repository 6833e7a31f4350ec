//! How threads outside a shard reach it: a queue of closures run on the
//! shard's thread, and the waker of the task that runs them. glommio's
//! shared channels connect two executors (both ends `connect` inside one),
//! which does not fit a handle used from plain threads (the process's
//! main thread, tests); a mutex taken once per command, off the hot path,
//! and glommio's wake from a foreign thread (which rings the executor's
//! own eventfd) do.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Mutex;
use std::task::{Poll, Waker};

use super::state::Shard;

/// A closure to run on the shard's thread.
pub type Command = Box<dyn FnOnce(&Rc<Shard>) + Send>;

#[derive(Default)]
struct Queue {
    commands: VecDeque<Command>,
    waker: Option<Waker>,
    closed: bool,
}

/// The queue between a `ShardHandle` and its shard.
#[derive(Default)]
pub struct Mailbox {
    q: Mutex<Queue>,
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        match self.q.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Queues `c`; `Err(c)` if the shard no longer takes commands.
    pub fn post(&self, c: Command) -> Result<(), Command> {
        let waker = {
            let mut q = self.lock();
            if q.closed {
                return Err(c);
            }
            q.commands.push_back(c);
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// No more commands: the ones queued are dropped (their callers see
    /// the shard gone).
    pub fn close(&self) {
        let (dropped, waker) = {
            let mut q = self.lock();
            q.closed = true;
            (std::mem::take(&mut q.commands), q.waker.take())
        };
        drop(dropped);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Runs commands on the shard's thread as they come, until closed.
    pub async fn serve(&self, shard: Rc<Shard>) {
        loop {
            let batch = std::future::poll_fn(|cx| {
                let mut q = self.lock();
                if !q.commands.is_empty() {
                    return Poll::Ready(Some(std::mem::take(&mut q.commands)));
                }
                if q.closed {
                    return Poll::Ready(None);
                }
                q.waker = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            let Some(batch) = batch else {
                return;
            };
            for c in batch {
                c(&shard);
            }
        }
    }
}
