//! `Turn<T>`: a value that callers take in turns, each waiting at most
//! until its own deadline (std's `Mutex` waits without one). The client
//! keeps each group's producer sequence in one: appends to a group go one
//! at a time (the group takes a producer's batches only in sequence
//! order), and a call waiting for its turn still ends at its timeout.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

pub struct Turn<T> {
    slot: Mutex<Slot<T>>,
    freed: Condvar,
}

struct Slot<T> {
    value: T,
    taken: bool,
}

/// The turn, held: the value, given back (and the next waiter woken)
/// when dropped.
pub struct Held<'a, T> {
    turn: &'a Turn<T>,
    value: Option<T>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl<T> Turn<T> {
    pub fn new(value: T) -> Turn<T> {
        Turn {
            slot: Mutex::new(Slot {
                value,
                taken: false,
            }),
            freed: Condvar::new(),
        }
    }

    /// Takes the turn, waiting until `deadline` at most (`None` then).
    pub fn take(&self, deadline: Instant) -> Option<Held<'_, T>>
    where
        T: Default,
    {
        let mut s = lock(&self.slot);
        while s.taken {
            let left = deadline.checked_duration_since(Instant::now())?;
            s = match self.freed.wait_timeout(s, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        s.taken = true;
        let value = std::mem::take(&mut s.value);
        Some(Held {
            turn: self,
            value: Some(value),
        })
    }
}

impl<T> std::ops::Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_ref().expect("held until dropped")
    }
}

impl<T> std::ops::DerefMut for Held<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().expect("held until dropped")
    }
}

impl<T> Drop for Held<'_, T> {
    fn drop(&mut self) {
        let mut s = lock(&self.turn.slot);
        if let Some(v) = self.value.take() {
            s.value = v;
        }
        s.taken = false;
        drop(s);
        self.turn.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_holder_at_a_time_and_a_waiter_gives_up_at_its_deadline() {
        let t = Arc::new(Turn::new(0u64));
        let mut h = t.take(Instant::now()).unwrap();
        *h += 1;
        // Held: a second taker waits its deadline out.
        let t2 = t.clone();
        let waiter = std::thread::spawn(move || {
            let start = Instant::now();
            let got = t2.take(start + Duration::from_millis(100)).is_some();
            (got, start.elapsed())
        });
        let (got, waited) = waiter.join().unwrap();
        assert!(!got);
        assert!(waited >= Duration::from_millis(100));
        // Given back, with its value; the next taker sees it.
        drop(h);
        let h = t.take(Instant::now()).unwrap();
        assert_eq!(*h, 1);
        drop(h);
        // A waiter is woken when the turn is given back.
        let h = t.take(Instant::now()).unwrap();
        let t3 = t.clone();
        let waiter = std::thread::spawn(move || {
            t3.take(Instant::now() + Duration::from_secs(10))
                .map(|v| *v)
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(h);
        assert_eq!(waiter.join().unwrap(), Some(1));
    }
}
