//! Size and age retention as a policy the leader evaluates, never as
//! something replicas do on their own: the leader's runtime calls
//! `truncate_point` now and then with its clock and proposes
//! `Command::Truncate` with the answer. Every replica then applies the same
//! committed truncate at the same point of the log, so their states stay
//! identical. (Replicas dropping records by their own clocks or sizes would
//! disagree about the earliest offset, and so about what a read answers.)
//!
//! Age is judged by the producers' timestamps in the batches, through the
//! running maximum the offset index keeps: a batch counts as old only when
//! it and every batch before it are. A producer with a clock far in the
//! future therefore holds age retention back until real time passes it;
//! the door can refuse batches stamped too far ahead (Kafka's
//! `message.timestamp.difference.max.ms`), with its own clock, at
//! proposal time.
//!
//! The policy sees only the batches this replica holds: a leader that
//! caught up by snapshot knows nothing of the records before it, and
//! proposes nothing on their account.

use super::state::LogState;

/// Size and age limits of one group. `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    /// Bytes of whole batches to keep at most. The newest batch is always
    /// kept, even if it alone is larger.
    pub max_bytes: Option<u64>,
    /// Keep batches whose producer timestamps (running maximum) are at
    /// most this old.
    pub max_age_ms: Option<u64>,
}

impl RetentionPolicy {
    /// The offset to propose `Truncate { before_offset }` with now, if the
    /// policy drops anything beyond what retention already dropped.
    pub fn truncate_point(&self, state: &LogState, now_ms: u64) -> Option<u64> {
        let index = state.index();
        if index.batch_count() == 0 {
            return None;
        }
        let by_size = self.max_bytes.map(|max| {
            let newest = index.last_base_offset().unwrap_or(index.next_offset());
            index.offset_keeping_bytes(max).min(newest)
        });
        let by_age = self
            .max_age_ms
            .map(|age| index.offset_newer_than(now_ms.saturating_sub(age)));
        let point = by_size.into_iter().chain(by_age).max()?;
        (point > state.retention_offset()).then_some(point)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::log::batch::BatchLimits;
    use crate::log::builder::BatchBuilder;
    use crate::log::command::Command;
    use crate::log::state::LogConfig;

    /// A batch of `records` records of 56 bytes: 40 + records * 60 bytes.
    fn batch(records: usize, timestamp_ms: u64) -> Bytes {
        let mut b = BatchBuilder::new(BatchLimits::DEFAULT);
        let mut w = b.start(0, 0, timestamp_ms);
        for _ in 0..records {
            w.push(&[0; 56]).unwrap();
        }
        w.finish().unwrap()
    }

    fn state(batches: &[(usize, u64)]) -> LogState {
        let mut s = LogState::new(LogConfig::DEFAULT);
        for (i, &(n, ts)) in batches.iter().enumerate() {
            s.apply(i as u64 + 1, &batch(n, ts)).unwrap();
        }
        s
    }

    fn size(max_bytes: u64) -> RetentionPolicy {
        RetentionPolicy {
            max_bytes: Some(max_bytes),
            max_age_ms: None,
        }
    }

    fn age(max_age_ms: u64) -> RetentionPolicy {
        RetentionPolicy {
            max_bytes: None,
            max_age_ms: Some(max_age_ms),
        }
    }

    #[test]
    fn no_limits_propose_nothing() {
        let s = state(&[(1, 0), (1, 0)]);
        assert_eq!(RetentionPolicy::default().truncate_point(&s, 1 << 40), None);
    }

    #[test]
    fn size_keeps_the_newest_batches_within_the_limit() {
        // Batches of 100, 160 and 100 bytes at offsets 0, 1, 3.
        let s = state(&[(1, 0), (2, 0), (1, 0)]);
        assert_eq!(size(360).truncate_point(&s, 0), None);
        assert_eq!(size(359).truncate_point(&s, 0), Some(1));
        assert_eq!(size(260).truncate_point(&s, 0), Some(1));
        assert_eq!(size(259).truncate_point(&s, 0), Some(3));
        // The newest batch stays even when it alone is over the limit.
        assert_eq!(size(10).truncate_point(&s, 0), Some(3));
    }

    #[test]
    fn a_point_already_applied_is_not_proposed_again() {
        let mut s = state(&[(1, 0), (2, 0), (1, 0)]);
        s.apply(4, &Command::Truncate { before_offset: 3 }.encode())
            .unwrap();
        assert_eq!(size(10).truncate_point(&s, 0), None);
        assert_eq!(size(1000).truncate_point(&s, 0), None);
    }

    #[test]
    fn age_drops_batches_older_than_the_limit_by_running_maximum() {
        // Timestamps 1000, 5000, 3000 (a slow producer clock), 9000.
        let s = state(&[(1, 1000), (1, 5000), (1, 3000), (1, 9000)]);
        assert_eq!(age(10_000).truncate_point(&s, 10_000), None);
        assert_eq!(age(8_000).truncate_point(&s, 10_000), Some(1));
        // 3000 is older than the cutoff, but follows a batch stamped 5000.
        assert_eq!(age(6_000).truncate_point(&s, 10_000), Some(1));
        assert_eq!(age(4_000).truncate_point(&s, 10_000), Some(3));
        // Everything is old: the whole log goes.
        assert_eq!(age(1).truncate_point(&s, 10_000), Some(4));
        // A clock before every timestamp drops nothing.
        assert_eq!(age(1).truncate_point(&s, 0), None);
    }

    #[test]
    fn the_larger_of_both_points_wins() {
        let s = state(&[(1, 1000), (1, 5000), (1, 9000)]);
        let both = RetentionPolicy {
            max_bytes: Some(200),
            max_age_ms: Some(2_000),
        };
        assert_eq!(both.truncate_point(&s, 10_000), Some(2));
        let both = RetentionPolicy {
            max_bytes: Some(100),
            max_age_ms: Some(20_000),
        };
        assert_eq!(both.truncate_point(&s, 10_000), Some(2));
    }

    #[test]
    fn a_leader_holding_no_batch_proposes_nothing() {
        let s = state(&[(1, 1000), (1, 5000)]);
        let restored = LogState::restore(&s.snapshot(), s.applied_index() + 1).unwrap();
        assert!(restored.retention_offset() < restored.next_offset());
        assert_eq!(size(0).truncate_point(&restored, 1 << 40), None);
        assert_eq!(age(0).truncate_point(&restored, 1 << 40), None);
    }
}
