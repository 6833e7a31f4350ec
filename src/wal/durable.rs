//! Durability tickets and futures: a `Ticket` names the flush that makes
//! a call durable, `Durable` completes when that flush has (or failed, or
//! the WAL was dropped), and `Signal` is what the WAL tells them through.
//! Touched once per flush and once per waiter, never per record.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use super::error::{Error, Result};

/// Names the flush that makes an append durable. Await it with
/// `Wal::durable`, or compare with `Wal::durable_flush`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[must_use = "an append is durable only once its flush completes"]
pub struct Ticket(pub u64);

/// Wakes the waiters of completed flushes. Shared with the `Durable`
/// futures; touched once per flush and once per waiter, never per record.
#[derive(Default)]
pub(super) struct Signal {
    pub(super) durable: AtomicU64,
    pub(super) failed: AtomicBool,
    /// The WAL was dropped: no flush will ever complete again.
    pub(super) closed: AtomicBool,
    pub(super) wakers: Mutex<Vec<(u64, Waker)>>,
}

impl Signal {
    pub(super) fn complete(&self, flush: u64) {
        self.durable.store(flush, Ordering::Release);
        self.wake(|t| t <= flush);
    }

    pub(super) fn fail(&self) {
        self.failed.store(true, Ordering::Release);
        self.wake(|_| true);
    }

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake(|_| true);
    }

    fn wake(&self, due: impl Fn(u64) -> bool) {
        let mut ws = match self.wakers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        ws.retain(|(t, w)| {
            if due(*t) {
                w.wake_by_ref();
                false
            } else {
                true
            }
        });
    }
}

/// Completes when the flush of a ticket has completed (`Ok`), when a
/// flush failed before it (`Err(Poisoned)`), or when the WAL was dropped
/// before it (`Err(Closed)`).
pub struct Durable {
    pub(super) signal: Arc<Signal>,
    pub(super) ticket: u64,
}

impl Future for Durable {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let ready = |s: &Signal| {
            if s.durable.load(Ordering::Acquire) >= self.ticket {
                Some(Ok(()))
            } else if s.failed.load(Ordering::Acquire) {
                Some(Err(Error::Poisoned {
                    cause: "the flush carrying this append failed".into(),
                }))
            } else if s.closed.load(Ordering::Acquire) {
                Some(Err(Error::Closed))
            } else {
                None
            }
        };
        if let Some(r) = ready(&self.signal) {
            return Poll::Ready(r);
        }
        {
            let mut ws = match self.signal.wakers.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            ws.push((self.ticket, cx.waker().clone()));
        }
        // A flush may have completed between the check and the push.
        match ready(&self.signal) {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    }
}
