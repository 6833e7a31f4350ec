//! `AsyncClient` from tokio against three real members: calls are
//! futures that do not block the polling thread (a current-thread runtime
//! runs 32 appends at once), a producer's record handles are futures, and
//! reads, status, truncate and a tail work the same as the synchronous
//! client's.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use bytes::Bytes;
use corelog::client::producer::ProducerOptions;
use corelog::client::{AsyncClient, ClientOptions};
use corelog::clientpb::Consistency;

use super::support::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn async_calls_from_a_current_thread_runtime_append_read_tail_and_never_block_it() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let servers = t.clients.clone();
    runtime().block_on(async move {
        let ac = Arc::new(
            AsyncClient::connect(&servers, ClientOptions::default())
                .await
                .unwrap(),
        );
        // The first poll returns at once, unanswered: the round trip runs
        // on a worker, not inside `poll` (a blocking call would come back
        // only with its answer).
        {
            let mut f = pin!(ac.append(0, vec![Bytes::from_static(b"first")]));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(f.as_mut().poll(&mut cx).is_pending());
            assert_eq!(f.await.unwrap().base_offset, 0);
        }
        // 32 appends at once on this one thread: each task waits without
        // holding the thread, so all are in flight together.
        let mut set = tokio::task::JoinSet::new();
        for k in 0..32u32 {
            let ac = ac.clone();
            set.spawn(async move {
                let v = Bytes::from(format!("task-{k}"));
                (ac.append(0, vec![v.clone()]).await.unwrap().base_offset, v)
            });
        }
        let mut got = Vec::new();
        while let Some(r) = set.join_next().await {
            got.push(r.unwrap());
        }
        got.sort();
        let offsets: Vec<u64> = got.iter().map(|x| x.0).collect();
        assert_eq!(offsets, (1..33).collect::<Vec<_>>(), "dense, each once");
        // A producer's handles are futures.
        let p = ac.producer(0, ProducerOptions::default());
        let handles: Vec<_> = (0..100)
            .map(|k| p.send(format!("p-{k}").as_bytes()))
            .collect();
        let mut offs = Vec::new();
        for h in handles {
            offs.push(h.await.unwrap());
        }
        assert_eq!(offs, (33..133).collect::<Vec<_>>(), "in sending order");
        drop(p);
        // Reads see exactly that.
        let r = ac.read(0, 0, 200, Consistency::Linearizable).await.unwrap();
        assert_eq!(r.records.len(), 133);
        assert_eq!(&r.records[0].1[..], b"first");
        for (o, v) in &got {
            assert_eq!(&r.records[*o as usize].1, v);
        }
        assert_eq!(&r.records[132].1[..], b"p-99");
        let st = ac.group_status(0).await.unwrap();
        assert_eq!(st.latest_offset, 133);
        assert_eq!(ac.cluster_status().await.unwrap().members.len(), 3);
        // A tail from the end gets what is appended next.
        let mut tail = ac.tail(0, 133).unwrap();
        let waiting = tokio::spawn(async move { tail.next(Duration::from_secs(10)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let a = ac
            .append(0, vec![Bytes::from_static(b"tailed")])
            .await
            .unwrap();
        let recs = waiting.await.unwrap().unwrap();
        assert_eq!(recs[0], (a.base_offset, Bytes::from_static(b"tailed")));
        assert_eq!(ac.truncate(0, 10).await.unwrap(), 10);
    });
}

#[test]
fn an_async_call_that_fails_returns_the_error_not_a_hang() {
    let _g = serial();
    let mut t = Three::new(1);
    t.start_all();
    let servers = t.clients.clone();
    runtime().block_on(async move {
        let ac = AsyncClient::connect(
            &servers,
            ClientOptions {
                timeout: Duration::from_secs(2),
                ..ClientOptions::default()
            },
        )
        .await
        .unwrap();
        // A group that does not exist: typed, from the server.
        match ac.append(7, vec![Bytes::from_static(b"x")]).await {
            Err(e) => assert!(format!("{e}").contains("GroupNotFound"), "{e}"),
            Ok(a) => panic!("appended to a missing group: {a:?}"),
        }
        // Every member gone: the call's timeout, not a hang.
        drop(t);
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            ac.append(0, vec![Bytes::from_static(b"y")]),
        )
        .await
        .expect("the call ended by its own timeout");
        assert!(r.is_err(), "{r:?}");
    });
}
