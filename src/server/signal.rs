//! Wake-ups between the server's tasks on one shard (`Rc`, `Cell`: no
//! locks): `Notify` wakes one waiting task and keeps a notification given
//! while nobody waits; `Latch` is a one-way flag any number of tasks wait
//! for (stopping).

use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};

/// Wakes one waiting task; remembers a notification until it is taken.
#[derive(Default)]
pub struct Notify {
    pending: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    pub fn notify(&self) {
        self.pending.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Resolves once a notification is pending, and takes it.
    pub async fn notified(&self) {
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

/// A one-way flag.
#[derive(Default)]
pub struct Latch {
    set: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl Latch {
    /// Sets the flag and wakes every waiter. Idempotent.
    pub fn set(&self) {
        if self.set.replace(true) {
            return;
        }
        let ws = std::mem::take(&mut *self.wakers.borrow_mut());
        for w in ws {
            w.wake();
        }
    }

    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Resolves once the flag is set.
    pub async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.set.get() {
                return Poll::Ready(());
            }
            let mut ws = self.wakers.borrow_mut();
            // A task waiting again (a loop re-creating this future) keeps
            // one slot: the list is bounded by the tasks, not the polls.
            if !ws.iter().any(|w| w.will_wake(cx.waker())) {
                ws.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// A counter many tasks watch: each waits for it to move past the value
/// it last saw (new records applied, answers written).
#[derive(Default)]
pub struct Watch {
    count: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl Watch {
    /// Moves the counter and wakes every waiter.
    pub fn bump(&self) {
        self.count.set(self.count.get().wrapping_add(1));
        let ws = std::mem::take(&mut *self.wakers.borrow_mut());
        for w in ws {
            w.wake();
        }
    }

    pub fn get(&self) -> u64 {
        self.count.get()
    }

    /// Resolves once the counter is not `seen`. The waiter list is
    /// emptied at every bump, so it holds only tasks waiting now.
    pub async fn changed(&self, seen: u64) {
        std::future::poll_fn(|cx| {
            if self.count.get() != seen {
                return Poll::Ready(());
            }
            let mut ws = self.wakers.borrow_mut();
            if !ws.iter().any(|w| w.will_wake(cx.waker())) {
                ws.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("count", &self.count.get())
            .finish()
    }
}
