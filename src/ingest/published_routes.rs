//! The live shard set as producers see it, published without a read-modify-write per event.
//!
//! Scaling swaps the whole set; producers read it on every ingest. Loading an `ArcSwap` costs
//! two locked instructions (take and return a debt slot), as many as the ring push itself
//! (BENCHMARKS.md, "Route set cached per thread", has what that cost). So each thread keeps a
//! strong reference to the last set it used, and an ingest only compares that set's id with the
//! bus's current id (a plain load). Ids come from one process-wide counter, so a cached set can never be
//! mistaken for another bus's, even one allocated at the same address.
//!
//! The price is retention, never staleness beyond what a load already allows: a thread keeps
//! the last set it ingested through (a route table and its shards' rings) until it ingests
//! again, into any bus, or exits. The thread that shuts a bus down drops its own copy at once.

use super::route_table::RouteTable;
use super::Shard;
use arc_swap::{ArcSwap, Guard};
use crossbeam_utils::CachePadded;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Source of [`Routes::id`]; 0 is never issued, so an empty cache never matches.
static NEXT_ROUTES_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The set this thread ingested through last, whichever bus it belongs to.
    static CACHED: RefCell<Option<Arc<Routes>>> = const { RefCell::new(None) };
}

/// One published shard set.
pub(crate) struct Routes {
    id: u64,
    pub(crate) shards: Vec<Arc<Shard>>,
    pub(crate) table: RouteTable,
}

impl Routes {
    /// The set of `shards`, in the order `table` indexes them. An empty set routes nothing.
    pub(crate) fn new(shards: Vec<Arc<Shard>>) -> Self {
        let ids: Vec<u16> = shards.iter().map(|s| s.id).collect();
        // `RouteTable` needs one shard: an empty set's table sends every hash to index 0, where
        // `shards.get` finds nothing.
        let table = RouteTable::new(if ids.is_empty() { &[0] } else { &ids });
        Self { id: NEXT_ROUTES_ID.fetch_add(1, Ordering::Relaxed), shards, table }
    }
}

/// A bus's current [`Routes`].
pub(crate) struct PublishedRoutes {
    current: ArcSwap<Routes>,
    /// `current`'s id, stored after it.
    current_id: CachePadded<AtomicU64>,
}

impl PublishedRoutes {
    pub(crate) fn new(routes: Routes) -> Self {
        let current_id = CachePadded::new(AtomicU64::new(routes.id));
        Self { current: ArcSwap::from_pointee(routes), current_id }
    }

    /// Makes `routes` the current set. Callers serialize publications (scaling holds its lock).
    pub(crate) fn publish(&self, routes: Routes) {
        let id = routes.id;
        self.current.store(Arc::new(routes));
        self.current_id.store(id, Ordering::Release);
    }

    /// The current set, for paths that are not per event.
    pub(crate) fn load(&self) -> Guard<Arc<Routes>> {
        self.current.load()
    }

    pub(crate) fn load_full(&self) -> Arc<Routes> {
        self.current.load_full()
    }

    /// Runs `f` on the current set through this thread's cached reference, refreshing it when
    /// the bus has published another set since. Falls back to a plain load when the cache is
    /// unavailable: while the thread is being torn down, or re-entered from inside `f` (a
    /// payload's drop that ingests).
    #[inline(always)]
    pub(crate) fn with_current<R>(&self, f: impl FnOnce(&Routes) -> R) -> R {
        let id = self.current_id.load(Ordering::Acquire);
        let mut f = Some(f);
        let cached = CACHED.try_with(|cell| {
            let mut cached = cell.try_borrow_mut().ok()?;
            let routes = match &mut *cached {
                Some(routes) if routes.id == id => routes,
                // A set older than `id` is possible here (the id is stored after the set); it
                // is only as stale as any load, and the next call refreshes it again.
                slot => slot.insert(self.current.load_full()),
            };
            f.take().map(|f| f(routes))
        });
        match (cached, f) {
            (Ok(Some(result)), _) => result,
            (_, Some(f)) => self.with_loaded(f),
            // `f` is taken only to be called, and its result returned above.
            (_, None) => unreachable!("the cached path consumed the closure without a result"),
        }
    }

    #[cold]
    #[inline(never)]
    fn with_loaded<R>(&self, f: impl FnOnce(&Routes) -> R) -> R {
        f(&self.current.load())
    }

    /// Drops this thread's cached set, so a bus shut down here is not kept alive by it.
    pub(crate) fn forget_cached() {
        let _ = CACHED.try_with(|cell| cell.try_borrow_mut().map(|mut cached| cached.take()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackpressureMode;

    fn shards(ids: &[u16]) -> Vec<Arc<Shard>> {
        ids.iter().map(|&id| Arc::new(Shard::new(id, 4, BackpressureMode::DropNewest))).collect()
    }

    fn live_ids(published: &PublishedRoutes) -> Vec<u16> {
        published.with_current(|routes| routes.shards.iter().map(|s| s.id).collect())
    }

    #[test]
    fn a_publication_is_seen_by_the_next_call_on_every_thread() {
        let published = Arc::new(PublishedRoutes::new(Routes::new(shards(&[0, 1]))));
        assert_eq!(live_ids(&published), [0, 1]);
        let other = {
            let published = published.clone();
            std::thread::spawn(move || live_ids(&published)).join().expect("thread")
        };
        assert_eq!(other, [0, 1]);
        published.publish(Routes::new(shards(&[0, 1, 2])));
        assert_eq!(live_ids(&published), [0, 1, 2]);
        let published2 = published.clone();
        assert_eq!(std::thread::spawn(move || live_ids(&published2)).join().expect("thread"), [0, 1, 2]);
    }

    #[test]
    fn two_buses_on_one_thread_never_see_each_others_sets() {
        let a = PublishedRoutes::new(Routes::new(shards(&[7])));
        let b = PublishedRoutes::new(Routes::new(shards(&[8, 9])));
        for _ in 0..3 {
            assert_eq!(live_ids(&a), [7]);
            assert_eq!(live_ids(&b), [8, 9]);
        }
    }

    #[test]
    fn the_cache_keeps_a_set_alive_only_until_forgotten() {
        let published = PublishedRoutes::new(Routes::new(shards(&[0])));
        let first = published.load_full();
        assert_eq!(live_ids(&published), [0]);
        published.publish(Routes::new(shards(&[1])));
        // This thread's cache still holds the first set: retention, not use.
        assert_eq!(Arc::strong_count(&first), 2);
        assert_eq!(live_ids(&published), [1]);
        assert_eq!(Arc::strong_count(&first), 1, "the refresh dropped the old set");
        let second = published.load_full();
        PublishedRoutes::forget_cached();
        assert_eq!(Arc::strong_count(&second), 2, "only `published` and `second` hold it");
    }

    #[test]
    fn a_reentrant_call_falls_back_to_a_plain_load() {
        let published = PublishedRoutes::new(Routes::new(shards(&[3])));
        let inner = published.with_current(|_| live_ids(&published));
        assert_eq!(inner, [3]);
    }
}
