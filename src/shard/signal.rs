//! How anything on the shard's thread tells the loop that there is work
//! (a proposal, a tick, a flush completion, a command): a flag and the
//! loop's waker. Setting it twice before the loop runs costs one turn.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The loop's doorbell.
#[derive(Default)]
pub struct Signal {
    rung: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    /// There is work: the loop runs a turn soon.
    pub fn ring(&self) {
        self.rung.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Takes the flag: whether the signal rang since the last take.
    pub fn take(&self) -> bool {
        self.rung.replace(false)
    }

    /// Waits until the signal rings or `other` (the inbox) is ready.
    pub fn wait<'a>(
        &'a self,
        other: Option<&'a mut Pin<Box<dyn Future<Output = ()>>>>,
    ) -> Wait<'a> {
        Wait {
            signal: self,
            other,
        }
    }
}

/// What `Signal::wait` returns: `true` if the signal rang, `false` if
/// the other future completed.
pub struct Wait<'a> {
    signal: &'a Signal,
    other: Option<&'a mut Pin<Box<dyn Future<Output = ()>>>>,
}

impl Future for Wait<'_> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        if self.signal.take() {
            return Poll::Ready(true);
        }
        *self.signal.waker.borrow_mut() = Some(cx.waker().clone());
        if let Some(f) = self.other.as_mut()
            && f.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(false);
        }
        Poll::Pending
    }
}

/// Yields once to the executor, so that the tasks the loop woke (Node
/// callers, connections) run before the next turn.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
