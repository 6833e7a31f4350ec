//! Size and age retention, enforced by each group's leader: once a
//! `check_interval`, every group this shard leads is judged by the
//! policy (`RetentionPolicy::truncate_point`, with this machine's clock),
//! and a group past a limit is given a replicated `Truncate` at the point
//! the policy names. Replicas never drop records by their own clocks or
//! sizes (log/retention.rs says why); they apply the leader's truncate
//! like a client's, and compaction (shard/compact.rs) then frees the
//! space below it.
//!
//! A truncate that fails (leadership lost, the group busy, the shard
//! stopping) is not retried here: the next check judges the group again.

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_lite::future::or;

use super::listener::ShardServer;
use super::ops::with_state;
use crate::log::{Command, RetentionPolicy};

/// Retention of every group of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub policy: RetentionPolicy,
    /// How often the leader judges its groups.
    pub check_interval: Duration,
}

impl Retention {
    /// No limits: records stay until a client truncates.
    pub const OFF: Retention = Retention {
        policy: RetentionPolicy {
            max_bytes: None,
            max_age_ms: None,
        },
        check_interval: Duration::from_secs(1),
    };

    pub fn is_off(&self) -> bool {
        self.policy.max_bytes.is_none() && self.policy.max_age_ms.is_none()
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention::OFF
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Judges the groups this shard leads once a `check_interval`, until the
/// server stops. Started only with a limit set.
pub(crate) async fn enforce(srv: Rc<ShardServer>, retention: Retention) {
    while !srv.stopping.is_set() {
        or(
            glommio::timer::sleep(retention.check_interval),
            srv.stopping.wait(),
        )
        .await;
        if srv.stopping.is_set() || srv.shard.failure().is_some() {
            return;
        }
        for group in srv.shard.group_ids() {
            let Some(node) = srv.shard.node(group) else {
                continue;
            };
            if !node.is_leader() {
                continue;
            }
            let Ok(Some(point)) =
                with_state(&node, |s| retention.policy.truncate_point(s, now_ms()))
            else {
                continue;
            };
            let cmd = Command::Truncate {
                before_offset: point,
            }
            .encode();
            match node.propose_applied(cmd).await {
                Ok(_) => {
                    srv.bump(|s| s.retention_truncates += 1);
                    tracing::debug!(group, before_offset = point, "retention truncated");
                }
                Err(e) => {
                    tracing::debug!(group, error = %e, "retention truncate not committed");
                }
            }
        }
    }
}
