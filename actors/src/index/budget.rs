//! The process-wide memory budget of the indexes' in-memory copies (search rankers, note
//! facts): each reserves the bytes it holds, and a copy that does not fit is not kept.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Default for the budget shared by the in-memory copies of every open vault.
pub const DEFAULT_MEMORY_LIMIT: usize = crate::settings::DEFAULT_SEARCH_MEMORY_BYTES;

/// Bytes reserved by every live in-memory copy in the process.
pub static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// Bytes held from a process-wide budget, given back when dropped.
pub struct Reservation {
    /// The budget's counter: [`IN_USE`], or a private one in tests.
    pool: &'static AtomicUsize,
    /// Bytes this reservation holds.
    held: usize,
}

impl Reservation {
    pub fn new(pool: &'static AtomicUsize) -> Self {
        Reservation { pool, held: 0 }
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Hold exactly `bytes`: always possible when shrinking, refused (nothing changes) when
    /// growing would take the pool over `limit`.
    pub fn resize(&mut self, bytes: usize, limit: usize) -> bool {
        if bytes <= self.held {
            self.pool.fetch_sub(self.held - bytes, Ordering::Relaxed);
            self.held = bytes;
            return true;
        }
        let more = bytes - self.held;
        let grown = self
            .pool
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(more).filter(|&total| total <= limit)
            });
        if grown.is_ok() {
            self.held = bytes;
        }
        grown.is_ok()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.fetch_sub(self.held, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_grows_within_the_limit_and_shrinks_freely() {
        static POOL: AtomicUsize = AtomicUsize::new(0);
        let mut a = Reservation::new(&POOL);
        let mut b = Reservation::new(&POOL);
        assert!(a.resize(600, 1000));
        assert!(!b.resize(500, 1000));
        assert_eq!(b.held(), 0);
        assert!(b.resize(400, 1000));
        assert!(a.resize(100, 1000));
        assert!(b.resize(900, 1000));
        assert_eq!(POOL.load(Ordering::Relaxed), 1000);
        drop(a);
        drop(b);
        assert_eq!(POOL.load(Ordering::Relaxed), 0);
    }
}
