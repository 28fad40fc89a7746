//! What no public call can provoke: a shard worker that dies. Workers catch adapter panics per
//! batch, so the only way one ends early is its task being aborted; these tests abort one and
//! check that nothing it held goes uncounted (failure modes 8 and 18).

use super::*;
use crate::adapter::Adapter;
use crate::error::ScalingError;
use crate::model::Batch;
use async_trait::async_trait;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Delivers every batch except shard 1's, which it holds forever once it has one.
#[derive(Default)]
struct StallsShardOne {
    stalled: Notify,
    stalled_events: AtomicU64,
}

#[async_trait]
impl Adapter for StallsShardOne {
    fn name(&self) -> &str {
        "stalls-shard-one"
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        if batch.shard() == 1 {
            self.stalled_events.store(batch.len() as u64, Ordering::SeqCst);
            self.stalled.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_worker_is_reported_and_everything_it_held_is_counted_lost() {
    let adapter = Arc::new(StallsShardOne::default());
    let config = EventBusConfig::builder().shards(2).build().unwrap();
    let bus = EventBus::with_adapter(config, adapter.clone()).await.unwrap();
    let ingest = |n: u64| {
        for i in 0..n {
            bus.ingest_raw(RawEvent::from_bytes_with_hash(&b"{}"[..], i)).unwrap();
        }
    };
    ingest(200);
    tokio::time::timeout(Duration::from_secs(10), adapter.stalled.notified()).await.expect("shard 1 got no batch");
    // Shard 1's worker now holds a batch; what it routes from here waits in its ring.
    ingest(200);
    let worker = bus.inner.workers.lock().unwrap().iter().find(|(id, _)| *id == 1).map(|(_, h)| h.abort_handle());
    worker.expect("shard 1 has a worker").abort();

    match bus.remove_shards(vec![1]).await {
        Err(ScalingError::Partial { done, failed }) => {
            assert!(done.is_empty());
            assert_eq!(failed.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1]);
        }
        other => panic!("a dead worker must make the removal partial, got {other:?}"),
    }
    bus.flush().await.unwrap();
    let s = bus.stats().snapshot();
    assert_eq!(s.events_ingested, 400);
    assert_eq!(s.events_dispatched + s.events_dropped, s.events_ingested, "{s:?}");
    assert_eq!(s.events_dropped, s.dropped_lost);
    assert!(
        s.dropped_lost > adapter.stalled_events.load(Ordering::SeqCst),
        "both the batch in the adapter and the ring's rest are lost: {s:?}"
    );
    assert_eq!(bus.stats().workers_running(), 1);
    bus.shutdown_via_ref().await.unwrap();
    assert!(bus.stats().shutdown_was_lossy.load(Ordering::Acquire));
}
