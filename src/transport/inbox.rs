//! [`Inbox`]: where one shard's inbound peer messages land. Connection
//! readers push (group, `Message`) pairs; the shard loop drains them once
//! per turn and sleeps on [`Inbox::wait`] when there is nothing to do.
//! Single-threaded (`Rc`, `RefCell`): it lives on the shard's executor and
//! never crosses cores.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::raftpb::Message;

/// Where this shard's inbound peer messages land. Cheap to clone (a
/// reference count); every clone is the same inbox.
#[derive(Clone, Default)]
pub struct Inbox {
    inner: Rc<InboxInner>,
}

#[derive(Default)]
struct InboxInner {
    msgs: RefCell<Vec<(u64, Message)>>,
    /// The shard loop, when it sleeps in `wait`.
    waker: RefCell<Option<Waker>>,
}

impl Inbox {
    /// An empty inbox.
    pub fn new() -> Inbox {
        Inbox::default()
    }

    /// Adds `msg` of `group` and wakes the task waiting in `wait`.
    pub fn push(&self, group: u64, msg: Message) {
        self.inner.msgs.borrow_mut().push((group, msg));
        self.wake();
    }

    /// Moves every pair of `batch` in, in order (one wake-up for all).
    pub fn push_all(&self, batch: &mut Vec<(u64, Message)>) {
        if batch.is_empty() {
            return;
        }
        self.inner.msgs.borrow_mut().append(batch);
        self.wake();
    }

    /// Moves everything received into `out`, in arrival order. Both
    /// vectors keep their capacity, so a steady loop allocates nothing.
    pub fn drain_into(&self, out: &mut Vec<(u64, Message)>) {
        out.append(&mut self.inner.msgs.borrow_mut());
    }

    /// Pairs waiting to be drained.
    pub fn len(&self) -> usize {
        self.inner.msgs.borrow().len()
    }

    /// True when nothing waits to be drained.
    pub fn is_empty(&self) -> bool {
        self.inner.msgs.borrow().is_empty()
    }

    /// Resolves once the inbox is non-empty (at once if it already is).
    /// One waiter at a time: the shard loop.
    pub async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if !self.inner.msgs.borrow().is_empty() {
                return Poll::Ready(());
            }
            *self.inner.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn wake(&self) {
        if let Some(w) = self.inner.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn msg(index: u64) -> Message {
        Message {
            index,
            ..Message::default()
        }
    }

    #[test]
    fn drain_returns_pushes_in_order_and_empties_the_inbox() {
        let inbox = Inbox::new();
        inbox.push(3, msg(1));
        let mut batch = vec![(4, msg(2)), (3, msg(3))];
        inbox.clone().push_all(&mut batch);
        assert!(batch.is_empty());
        assert_eq!(inbox.len(), 3);
        let mut out = vec![(9, msg(0))];
        inbox.drain_into(&mut out);
        let got: Vec<(u64, u64)> = out.iter().map(|(g, m)| (*g, m.index)).collect();
        assert_eq!(got, vec![(9, 0), (3, 1), (4, 2), (3, 3)]);
        assert!(inbox.is_empty());
    }

    #[test]
    fn wait_sleeps_until_a_push_wakes_it() {
        let inbox = Inbox::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut f = pin!(inbox.wait());
        assert!(f.as_mut().poll(&mut cx).is_pending());
        inbox.push(1, msg(1));
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert!(f.as_mut().poll(&mut cx).is_ready());
        // Non-empty: a new wait returns at once.
        let mut g = pin!(inbox.wait());
        assert!(g.as_mut().poll(&mut cx).is_ready());
    }
}
