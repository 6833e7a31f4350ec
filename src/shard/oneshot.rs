//! A single-threaded one-shot channel: how the shard loop hands a
//! proposal's or a read's outcome to the task awaiting it. One allocation
//! per request (a request is a client batch, not a record); no lock.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The sender is gone (sent, or dropped without sending).
    closed: bool,
}

/// The sending half, kept by whoever will answer.
pub struct Sender<T> {
    slot: Rc<RefCell<Slot<T>>>,
}

/// The receiving half: a future of the answer, `None` if the sender was
/// dropped without answering.
pub struct Receiver<T> {
    slot: Rc<RefCell<Slot<T>>>,
}

pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Rc::new(RefCell::new(Slot {
        value: None,
        waker: None,
        closed: false,
    }));
    (Sender { slot: slot.clone() }, Receiver { slot })
}

impl<T> Sender<T> {
    /// Answers; the receiver's task is woken. Dropped if the receiver is
    /// gone.
    pub fn send(self, value: T) {
        self.slot.borrow_mut().value = Some(value);
        // Drop closes and wakes.
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = self.slot.borrow_mut();
            s.closed = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = self.slot.borrow_mut();
        if let Some(v) = s.value.take() {
            return Poll::Ready(Some(v));
        }
        if s.closed {
            return Poll::Ready(None);
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn poll<T>(r: &mut Receiver<T>) -> Poll<Option<T>> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(r).poll(&mut cx)
    }

    #[test]
    fn the_answer_arrives_once_and_a_dropped_sender_reads_as_none() {
        let (tx, mut rx) = channel::<u32>();
        assert!(poll(&mut rx).is_pending());
        tx.send(7);
        assert_eq!(poll(&mut rx), Poll::Ready(Some(7)));
        let (tx, mut rx) = channel::<u32>();
        drop(tx);
        assert_eq!(poll(&mut rx), Poll::Ready(None));
    }
}
