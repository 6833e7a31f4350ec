//! A counting global allocator: while a target runs (armed on this
//! thread), it records the largest single allocation, so that a target can
//! check that no length read from the input made the decoder reserve more
//! than its configured limit allows.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct Counting;

thread_local! {
    // Const-initialized and without Drop: reading them never allocates
    // (which would re-enter the allocator).
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = ARMED.try_with(|a| {
        if a.get() {
            let _ = PEAK.try_with(|p| p.set(p.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// bookkeeping touches thread-locals only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` with allocations counted; returns its result and the largest
/// single allocation it made.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK.with(|p| p.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    (out, PEAK.with(|p| p.get()))
}

/// Disarms after a panic inside `measure` (the unwind skipped it).
pub fn disarm() {
    ARMED.with(|a| a.set(false));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_reports_the_largest_allocation() {
        let (v, peak) = measure(|| {
            let a = vec![0u8; 1000];
            let b = vec![0u8; 50_000];
            a.len() + b.len()
        });
        assert_eq!(v, 51_000);
        assert!(peak >= 50_000, "peak {peak}");
        let ((), small) = measure(|| {
            std::hint::black_box(vec![0u8; 10]);
        });
        assert!(small < 50_000, "peak {small} carried over");
    }
}
