//! The WAL's completion wakes a sleeping glommio executor through
//! `FlushWake`, and an executor waiting on it sleeps rather than spins.

use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

use super::memlock::raise_memlock;
use super::wake::FlushWake;
use crate::raftpb::HardState;
use crate::wal::{Options, Wal};

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn a_flush_completion_wakes_the_executor_which_sleeps_meanwhile() {
    raise_memlock().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let ex = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(64 << 10)
        .spawn(move || async move {
            let mut opts = Options::new(1, 0);
            opts.segment_size = 1 << 20;
            let mut wal = Wal::open(&path, opts).unwrap();
            wal.wait_prepared();
            let wake = FlushWake::register(&wal).unwrap();
            let mut done = Vec::new();
            for term in 1..=5u64 {
                let hs = HardState {
                    term,
                    vote: 1,
                    commit: 0,
                };
                let _ = wal.set_hard_state(7, &hs).unwrap();
                let n = wal.start_flush().unwrap().unwrap();
                // Wait on the eventfd until poll_flush reports the flush done.
                let mut wakes = 0;
                while wal.poll_flush().unwrap() < n {
                    wake.wait().await.unwrap();
                    wakes += 1;
                    assert!(wakes < 100, "flush {n} never completed");
                }
                done.push(n);
            }
            // Nothing in flight: a wait now must not return on its own, and
            // the executor must sleep, not spin, while it waits.
            let cpu0 = thread_cpu();
            let t0 = Instant::now();
            let idle = glommio::timer::timeout(Duration::from_millis(300), async {
                wake.wait().await.unwrap();
                Ok(())
            })
            .await;
            let (cpu, wall) = (thread_cpu() - cpu0, t0.elapsed());
            // A poke ends a pending wait (shutdown's path).
            let wake = std::rc::Rc::new(wake);
            let w = wake.clone();
            let waiting = glommio::spawn_local(async move { w.wait().await.unwrap() });
            glommio::timer::sleep(Duration::from_millis(5)).await;
            wake.poke();
            let poked = glommio::timer::timeout(Duration::from_secs(5), async {
                waiting.await;
                Ok(())
            })
            .await;
            (done, idle.is_err(), cpu, wall, poked.is_ok())
        })
        .unwrap();
    let (done, timed_out, cpu, wall, poked) = ex.join().unwrap();
    assert!(poked, "a poke did not end a pending wait");
    assert_eq!(done, vec![1, 2, 3, 4, 5]);
    assert!(timed_out, "a wait with no flush in flight returned");
    assert!(wall >= Duration::from_millis(300));
    assert!(
        cpu < Duration::from_millis(100),
        "the executor used {cpu:?} of CPU in {wall:?} of waiting: it spins"
    );
}
