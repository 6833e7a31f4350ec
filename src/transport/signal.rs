//! The two wake-up primitives of the peer network's tasks, all on one
//! executor thread (`Rc`, `Cell`: no locks, no atomics):
//!
//! - [`Notify`]: one waiter (a connection's writer task) woken when work
//!   arrives; a notification given while nobody waits is kept, so none is
//!   lost between the waiter's check and its sleep.
//! - [`Latch`]: many waiters (every task of a `PeerNet`) woken once, for
//!   good, when it is set: the shutdown signal. Each waiter keeps one slot,
//!   so a task polled many times while waiting does not grow the list.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Wakes one waiting task; remembers a notification until it is taken.
#[derive(Default)]
pub(crate) struct Notify {
    pending: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    /// Marks work pending and wakes the waiter, if any.
    pub(crate) fn notify(&self) {
        self.pending.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Resolves once a notification is pending, and takes it.
    pub(crate) async fn notified(&self) {
        std::future::poll_fn(|cx| {
            if self.pending.replace(false) {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// A one-way flag that any number of tasks wait for.
#[derive(Clone, Default)]
pub(crate) struct Latch {
    inner: Rc<LatchInner>,
}

#[derive(Default)]
struct LatchInner {
    set: Cell<bool>,
    /// One slot per live waiter; `free` lists the reusable ones.
    slots: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl Latch {
    /// Sets the latch and wakes every waiter. Idempotent.
    pub(crate) fn set(&self) {
        if self.inner.set.replace(true) {
            return;
        }
        // Take the wakers out before waking: a woken task may run (and
        // drop its slot) only later, but keep the borrow short anyway.
        let wakers: Vec<Waker> = self
            .inner
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }

    /// True once [`Latch::set`] was called.
    pub(crate) fn is_set(&self) -> bool {
        self.inner.set.get()
    }

    /// Resolves once the latch is set.
    pub(crate) fn wait(&self) -> LatchWait {
        LatchWait {
            latch: self.clone(),
            slot: None,
        }
    }
}

/// The future of [`Latch::wait`].
pub(crate) struct LatchWait {
    latch: Latch,
    slot: Option<usize>,
}

impl Future for LatchWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = &self.latch.inner;
        if inner.set.get() {
            return Poll::Ready(());
        }
        let slot = match self.slot {
            Some(s) => s,
            None => {
                let mut slots = inner.slots.borrow_mut();
                let s = inner.free.borrow_mut().pop().unwrap_or_else(|| {
                    slots.push(None);
                    slots.len() - 1
                });
                drop(slots);
                self.slot = Some(s);
                s
            }
        };
        self.latch.inner.slots.borrow_mut()[slot] = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for LatchWait {
    fn drop(&mut self) {
        if let Some(s) = self.slot.take() {
            self.latch.inner.slots.borrow_mut()[s] = None;
            self.latch.inner.free.borrow_mut().push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn poll_once<F: Future>(f: Pin<&mut F>, w: &Waker) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(w))
    }

    #[test]
    fn a_notification_before_the_wait_is_not_lost() {
        let n = Notify::default();
        n.notify();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let w = Waker::from(count.clone());
        let mut f = Box::pin(n.notified());
        assert_eq!(poll_once(f.as_mut(), &w), Poll::Ready(()));
        // Taken: the next wait sleeps until the next notify, which wakes it.
        let mut f = Box::pin(n.notified());
        assert_eq!(poll_once(f.as_mut(), &w), Poll::Pending);
        n.notify();
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert_eq!(poll_once(f.as_mut(), &w), Poll::Ready(()));
    }

    #[test]
    fn a_latch_wakes_every_waiter_once_and_reuses_slots() {
        let l = Latch::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let w = Waker::from(count.clone());
        let mut a = Box::pin(l.wait());
        let mut b = Box::pin(l.wait());
        for _ in 0..10 {
            assert_eq!(poll_once(a.as_mut(), &w), Poll::Pending);
            assert_eq!(poll_once(b.as_mut(), &w), Poll::Pending);
        }
        assert_eq!(l.inner.slots.borrow().len(), 2, "one slot per waiter");
        drop(b);
        let mut c = Box::pin(l.wait());
        assert_eq!(poll_once(c.as_mut(), &w), Poll::Pending);
        assert_eq!(l.inner.slots.borrow().len(), 2, "a freed slot is reused");
        l.set();
        assert_eq!(count.0.load(Ordering::Relaxed), 2);
        assert!(l.is_set());
        assert_eq!(poll_once(a.as_mut(), &w), Poll::Ready(()));
        assert_eq!(poll_once(c.as_mut(), &w), Poll::Ready(()));
        let mut d = Box::pin(l.wait());
        assert_eq!(poll_once(d.as_mut(), &w), Poll::Ready(()));
    }
}
