//! The cache of recent entries: appended entries are kept (as the
//! caller's `Bytes`) until a completed flush has put them on disk, then
//! evicted oldest first down to `Options::cache_bytes`; older entries are
//! read from the segments.

use super::Wal;
use super::disk::Disk;
use super::group::cache_cost;

impl<D: Disk> Wal<D> {
    /// Evicts cached entries, oldest first, down to the budget. Only called
    /// after a flush, so that an entry not yet on disk is never evicted.
    pub(super) fn evict(&mut self) {
        let order_limit = (self.opts.cache_bytes / 64 * 2).max(1024) as usize;
        while self.cache_used > self.opts.cache_bytes || self.cache_order.len() > order_limit {
            let Some((gid, index)) = self.cache_order.pop_front() else {
                break;
            };
            let Some(g) = self.groups.get_mut(&gid) else {
                continue;
            };
            match g.cache.front() {
                Some((_, flush)) if *flush > self.durable_flush => {
                    // Not on disk yet (a flush in flight or pending): stop
                    // here, the next completed flush resumes.
                    self.cache_order.push_front((gid, index));
                    break;
                }
                Some(_) if g.cache_first() <= index => {
                    if let Some((e, _)) = g.cache.pop_front() {
                        self.cache_used -= cache_cost(&e);
                    }
                }
                _ => {}
            }
        }
    }
}
