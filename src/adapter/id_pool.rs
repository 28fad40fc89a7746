//! Reusing the id strings of finished pages.
//!
//! [`StoredEvent::id`] is a `String`, so a page of 1 000 events is 1 000 small allocations and,
//! once the caller drops the page, 1 000 frees; glibc's malloc then also consolidates them the
//! next time a large buffer is allocated. A consumer looping over pages pays that on every
//! page, about half of what a Memory-adapter poll costs, unless the strings are reused:
//! [`EventBus::poll_into`](crate::EventBus::poll_into) does it for a caller that reuses its
//! page, and the C and Node bindings keep a pool per bus because they copy every id out anyway.

use crate::model::StoredEvent;
use std::sync::Mutex;

/// Most strings a pool keeps: enough for the largest pages in flight, bounded so that one huge
/// page does not pin its ids' memory for the life of a bus.
const MAX_POOLED: usize = 1 << 16;

/// Emptied id strings waiting to hold the ids of a later page. Shared by concurrent polls.
#[derive(Debug, Default)]
pub struct IdPool(Mutex<Vec<String>>);

impl IdPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the ids of `events`, emptied, for later pages; the rest of each event is dropped.
    pub fn recycle(&self, events: impl IntoIterator<Item = StoredEvent>) {
        self.recycle_ids(events.into_iter().map(|event| event.id));
    }

    /// Keeps `ids`, emptied, for later pages (up to a bound; the rest are freed).
    pub fn recycle_ids(&self, ids: impl IntoIterator<Item = String>) {
        let ids = ids.into_iter();
        let mut pooled = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let room = MAX_POOLED.saturating_sub(pooled.len());
        pooled.reserve(ids.size_hint().0.min(room));
        pooled.extend(ids.filter(|id| id.capacity() > 0).take(room).map(|mut id| {
            id.clear();
            id
        }));
    }

    /// Runs `write` with the pooled strings, all empty; it pops the ones it uses. The pool is
    /// locked meanwhile, so `write` should only fill strings.
    pub fn with_pooled<R>(&self, write: impl FnOnce(&mut Vec<String>) -> R) -> R {
        write(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Strings held.
    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |pooled| pooled.len())
    }

    /// Whether the pool holds no string.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycled_ids_come_back_empty_with_their_memory() {
        let pool = IdPool::new();
        let id = String::from("3-1234567");
        let address = id.as_ptr();
        pool.recycle_ids([id, String::new()]);
        assert_eq!(pool.len(), 1, "a string without memory is not worth keeping");
        let taken = pool.with_pooled(|pooled| pooled.pop()).expect("one string pooled");
        assert!(taken.is_empty());
        assert_eq!(taken.as_ptr(), address);
        assert!(pool.is_empty());
    }

    #[test]
    fn the_pool_is_bounded() {
        let pool = IdPool::new();
        pool.recycle_ids((0..MAX_POOLED + 10).map(|i| i.to_string()));
        assert_eq!(pool.len(), MAX_POOLED);
        pool.with_pooled(|pooled| pooled.truncate(MAX_POOLED - 10));
        assert_eq!(pool.len(), MAX_POOLED - 10);
        pool.recycle_ids((0..20).map(|i| i.to_string()));
        assert_eq!(pool.len(), MAX_POOLED);
    }
}
