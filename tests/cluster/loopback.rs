//! An in-process stand-in for the peer network, for tests only: each
//! (member, shard) has an inbox in a registry shared by every member of
//! the test; a send is queued and handed over at the shard's `flush`, to
//! the shard of the receiving member that runs the group. A member whose
//! shards are stopped (or cut off with `Loopback::cut`) has no inbox: what
//! is sent to it is reported unreachable, as a failed connection would.
//! The real network (`transport::net::PeerNet`) replaces it where sockets
//! are the point.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use corelog::cluster::Cluster;
use corelog::raftpb::Message;
use corelog::shard::{PeerEnv, Peers, PeersFactory};

/// What arrived, and the waker of the shard loop waiting for it.
type Queue = (Vec<(u64, Message)>, Option<Waker>);

#[derive(Default)]
struct Inbox {
    q: Mutex<Queue>,
}

impl Inbox {
    fn push(&self, batch: Vec<(u64, Message)>) {
        let w = {
            let mut q = self.q.lock().unwrap();
            q.0.extend(batch);
            q.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

/// The registry of every shard's inbox.
#[derive(Default)]
pub struct Loopback {
    inboxes: Mutex<HashMap<(u64, u32), Arc<Inbox>>>,
    cut: Mutex<HashSet<u64>>,
}

impl Loopback {
    pub fn new() -> Arc<Loopback> {
        Arc::new(Loopback::default())
    }

    /// The factory every member's shards make their network with.
    pub fn factory(self: &Arc<Self>) -> PeersFactory {
        let reg = self.clone();
        Arc::new(move |env: &PeerEnv| {
            let inbox = Arc::new(Inbox::default());
            reg.inboxes
                .lock()
                .unwrap()
                .insert((env.member, env.shard), inbox.clone());
            let p: Rc<dyn Peers> = Rc::new(LoopPeers {
                reg: reg.clone(),
                cluster: env.cluster.clone(),
                me: (env.member, env.shard),
                inbox,
                out: RefCell::new(HashMap::new()),
                unreachable: RefCell::new(Vec::new()),
            });
            Ok(p)
        })
    }

    /// Nothing reaches `member` and nothing leaves it until `heal`.
    pub fn cut(&self, member: u64) {
        self.cut.lock().unwrap().insert(member);
    }

    pub fn heal(&self, member: u64) {
        self.cut.lock().unwrap().remove(&member);
    }
}

struct LoopPeers {
    reg: Arc<Loopback>,
    cluster: Arc<Cluster>,
    me: (u64, u32),
    inbox: Arc<Inbox>,
    out: RefCell<HashMap<u64, Vec<(u64, Message)>>>,
    unreachable: RefCell<Vec<(u64, u64)>>,
}

impl Peers for LoopPeers {
    fn send(&self, to: u64, group: u64, msg: Message) -> bool {
        if self.cluster.member(to).is_none() {
            return false;
        }
        self.out
            .borrow_mut()
            .entry(to)
            .or_default()
            .push((group, msg));
        true
    }

    fn flush(&self) {
        let out = std::mem::take(&mut *self.out.borrow_mut());
        let cut = self.reg.cut.lock().unwrap().clone();
        for (to, batch) in out {
            let Some(m) = self.cluster.member(to) else {
                continue;
            };
            let mut per_shard: HashMap<u32, Vec<(u64, Message)>> = HashMap::new();
            for (g, msg) in batch {
                per_shard.entry(m.shard_of(g)).or_default().push((g, msg));
            }
            for (shard, batch) in per_shard {
                let inbox = self.reg.inboxes.lock().unwrap().get(&(to, shard)).cloned();
                match inbox {
                    Some(i) if !cut.contains(&to) && !cut.contains(&self.me.0) => i.push(batch),
                    _ => self
                        .unreachable
                        .borrow_mut()
                        .extend(batch.iter().map(|(g, _)| (to, *g))),
                }
            }
        }
    }

    fn take_unreachable(&self, out: &mut Vec<(u64, u64)>) {
        out.append(&mut self.unreachable.borrow_mut());
    }

    fn drain_inbox(&self, out: &mut Vec<(u64, Message)>) {
        out.append(&mut self.inbox.q.lock().unwrap().0);
    }

    fn inbox_ready(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        let inbox = self.inbox.clone();
        Box::pin(std::future::poll_fn(move |cx| {
            let mut q = inbox.q.lock().unwrap();
            if !q.0.is_empty() {
                return Poll::Ready(());
            }
            q.1 = Some(cx.waker().clone());
            Poll::Pending
        }))
    }

    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        let mut inboxes = self.reg.inboxes.lock().unwrap();
        if inboxes
            .get(&self.me)
            .is_some_and(|i| Arc::ptr_eq(i, &self.inbox))
        {
            inboxes.remove(&self.me);
        }
        Box::pin(async {})
    }
}
