//! `Completion`: a value handed from one thread to whoever waits for it,
//! by blocking (`wait`, `wait_until`) or as a `Future` (`.await`, from any
//! async runtime: the completing thread wakes the task's `Waker`). The
//! client's own threads (the connection readers, a producer, the async
//! client's workers) complete them; applications wait either way.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

struct Slot<T> {
    value: Option<T>,
    /// The completer was dropped without a value.
    abandoned: bool,
    waker: Option<Waker>,
}

struct Shared<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The side that gives the value (once).
pub struct Completer<T> {
    shared: Option<Arc<Shared<T>>>,
}

/// The side that waits for it.
pub struct Completion<T> {
    shared: Arc<Shared<T>>,
}

/// A new pair.
pub fn completion<T>() -> (Completer<T>, Completion<T>) {
    let shared = Arc::new(Shared {
        slot: Mutex::new(Slot {
            value: None,
            abandoned: false,
            waker: None,
        }),
        ready: Condvar::new(),
    });
    (
        Completer {
            shared: Some(shared.clone()),
        },
        Completion { shared },
    )
}

impl<T> Completer<T> {
    /// Hands `value` over and wakes the waiter.
    pub fn complete(mut self, value: T) {
        if let Some(s) = self.shared.take() {
            finish(&s, Some(value));
        }
    }
}

fn finish<T>(s: &Shared<T>, value: Option<T>) {
    let waker = {
        let mut slot = lock(&s.slot);
        match value {
            Some(v) => slot.value = Some(v),
            None => slot.abandoned = true,
        }
        slot.waker.take()
    };
    s.ready.notify_all();
    if let Some(w) = waker {
        w.wake();
    }
}

impl<T> Drop for Completer<T> {
    /// Dropped without a value: the waiter learns it will get none.
    fn drop(&mut self) {
        if let Some(s) = self.shared.take() {
            finish(&s, None);
        }
    }
}

/// Why a wait ended without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    /// The deadline passed first.
    TimedOut,
    /// The completer was dropped without a value.
    Abandoned,
}

impl<T> Completion<T> {
    /// Blocks until the value comes (or never will: `None`).
    pub fn wait(self) -> Option<T> {
        let mut slot = lock(&self.shared.slot);
        loop {
            if let Some(v) = slot.value.take() {
                return Some(v);
            }
            if slot.abandoned {
                return None;
            }
            slot = self
                .shared
                .ready
                .wait(slot)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Blocks until the value comes or `deadline` passes.
    pub fn wait_until(&self, deadline: Instant) -> Result<T, Unfinished> {
        let mut slot = lock(&self.shared.slot);
        loop {
            if let Some(v) = slot.value.take() {
                return Ok(v);
            }
            if slot.abandoned {
                return Err(Unfinished::Abandoned);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Unfinished::TimedOut);
            }
            slot = self
                .shared
                .ready
                .wait_timeout(slot, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl<T> Future for Completion<T> {
    /// `None`: the completer was dropped without a value.
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slot = lock(&self.shared.slot);
        if let Some(v) = slot.value.take() {
            return Poll::Ready(Some(v));
        }
        if slot.abandoned {
            return Poll::Ready(None);
        }
        // The newest task's waker: a future moved between tasks is woken
        // where it is polled now.
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    use super::*;

    struct CountWakes(AtomicUsize);
    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_value_completed_on_another_thread_reaches_a_blocking_waiter() {
        let (c, w) = completion();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            c.complete(7u32);
        });
        assert_eq!(w.wait(), Some(7));
        t.join().unwrap();
    }

    #[test]
    fn a_dropped_completer_ends_every_kind_of_wait() {
        let (c, w) = completion::<u32>();
        drop(c);
        assert_eq!(
            w.wait_until(Instant::now() + Duration::from_secs(5)),
            Err(Unfinished::Abandoned)
        );
        assert_eq!(w.wait(), None);
    }

    #[test]
    fn wait_until_times_out_and_still_gets_a_later_value() {
        let (c, w) = completion::<u32>();
        assert_eq!(
            w.wait_until(Instant::now() + Duration::from_millis(10)),
            Err(Unfinished::TimedOut)
        );
        c.complete(3);
        assert_eq!(w.wait_until(Instant::now()), Ok(3));
    }

    #[test]
    fn polling_registers_the_waker_and_completion_wakes_it_once() {
        let (c, mut w) = completion::<u32>();
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        assert_eq!(Pin::new(&mut w).poll(&mut cx), Poll::Pending);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
        c.complete(9);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(Pin::new(&mut w).poll(&mut cx), Poll::Ready(Some(9)));
    }
}
