//! `stats_json()` and `stats_prometheus()`: the JSON document agrees with the counters, per
//! shard and per adapter, and the Prometheus exposition is read back by a real Prometheus text
//! parser (the Prometheus project's Python client, `prometheus_client`, installed with pip into
//! a venv under the target directory on first use; `tests/prometheus/parse.py`) and agrees
//! with the same counters.

mod common;

use async_trait::async_trait;
use common::prometheus::{parse_prometheus, value, Family};
use common::{Fault, Recorder};
use purple_rain::adapter::AdapterMetric;
use purple_rain::{
    Adapter, AdapterConfig, AdapterError, Batch, BatchConfig, EventBus, EventBusConfig, RawEvent, RetryPolicy,
    STATS_SCHEMA_VERSION,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

fn sum(families: &BTreeMap<String, Family>, family: &str) -> f64 {
    families[family].samples.iter().map(|s| s.2).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bus_exports_agree_with_the_counters_per_shard_and_adapter() {
    let config = EventBusConfig::builder().shards(3).adapter(AdapterConfig::memory()).build().unwrap();
    let bus = EventBus::new(config).await.unwrap();
    for i in 0..3000 {
        bus.ingest_raw(RawEvent::with_key(format!("{{\"n\":{i}}}").into_bytes(), format!("k{}", i % 97))).unwrap();
    }
    bus.flush().await.unwrap();
    let added = bus.add_shards(1).await.unwrap();
    bus.remove_shards(vec![0]).await.unwrap();
    for i in 0..1000 {
        bus.ingest_raw(RawEvent::with_key(format!("{{\"m\":{i}}}").into_bytes(), format!("k{}", i % 89))).unwrap();
    }
    bus.flush().await.unwrap();

    let snapshot = bus.stats().snapshot();
    assert_eq!(snapshot.events_ingested, 4000);
    let doc: Value = serde_json::from_str(&bus.stats_json()).unwrap();
    assert_eq!(doc["schema"], STATS_SCHEMA_VERSION);
    assert_eq!(doc["version"], purple_rain::VERSION);
    let totals = &doc["totals"];
    assert_eq!(totals["events_ingested"], 4000);
    assert_eq!(totals["events_dispatched"], snapshot.events_dispatched);
    assert_eq!(totals["events_dropped"], 0);
    assert_eq!(totals["events_pending"], 0);
    assert_eq!(totals["batches_dispatched"], snapshot.batches_dispatched);
    assert_eq!(totals["workers_running"], 3);
    assert_eq!(totals["shards"], 3);
    let shards = doc["shards"].as_array().unwrap();
    let ingested: u64 = shards.iter().map(|s| s["events_ingested"].as_u64().unwrap()).sum();
    assert_eq!(ingested, 4000, "live and retired shards add up to the total");
    let retired: Vec<&Value> = shards.iter().filter(|s| s["retired"] == true).collect();
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0]["id"], 0);
    let live: HashSet<u64> =
        shards.iter().filter(|s| s["retired"] == false).map(|s| s["id"].as_u64().unwrap()).collect();
    assert_eq!(live, HashSet::from([1, 2, u64::from(added[0])]));
    assert!(shards
        .iter()
        .all(|s| s["events_pending"] == 0 && s["ring_len"] == 0 && s["ring_capacity"].as_u64() > Some(0)));
    let adapter = &doc["adapter"];
    assert_eq!(adapter["name"], "memory");
    assert_eq!(adapter["last_error"], Value::Null);
    let retained: f64 = adapter["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "memory_retained_events")
        .map(|m| m["value"].as_f64().unwrap())
        .sum();
    assert_eq!(retained, 4000.0, "the Memory adapter holds every event, also the retired shard's");

    let families = parse_prometheus(&bus.stats_prometheus());
    assert_eq!(value(&families, "purple_rain_events_ingested", "purple_rain_events_ingested_total", &[]), 4000.0);
    assert_eq!(families["purple_rain_events_ingested"].kind, "counter");
    assert_eq!(
        value(&families, "purple_rain_batches_dispatched", "purple_rain_batches_dispatched_total", &[]),
        snapshot.batches_dispatched as f64
    );
    assert_eq!(sum(&families, "purple_rain_events_dropped"), 0.0);
    assert_eq!(value(&families, "purple_rain_shards", "purple_rain_shards", &[]), 3.0);
    assert_eq!(families["purple_rain_shards"].kind, "gauge");
    assert_eq!(value(&families, "purple_rain_adapter_info", "purple_rain_adapter_info", &[("adapter", "memory")]), 1.0);
    // Per shard: the live shards only, each once, agreeing with the JSON.
    let shard_family = &families["purple_rain_shard_events_ingested"];
    assert_eq!(shard_family.kind, "counter");
    let labelled: HashSet<u64> = shard_family.samples.iter().map(|s| s.1["shard"].parse().unwrap()).collect();
    assert_eq!(labelled, live);
    for s in shards.iter().filter(|s| s["retired"] == false) {
        let id = s["id"].to_string();
        let got = value(
            &families,
            "purple_rain_shard_events_ingested",
            "purple_rain_shard_events_ingested_total",
            &[("shard", &id)],
        );
        assert_eq!(got, s["events_ingested"].as_f64().unwrap());
    }
    // The adapter's figures: per-shard retained events add up, the trimmed counter is a counter.
    assert_eq!(sum(&families, "purple_rain_memory_retained_events"), 4000.0);
    assert_eq!(families["purple_rain_memory_trimmed_events"].kind, "counter");
    assert!(families.values().all(|f| !f.help.is_empty()), "every family has help text");
    bus.shutdown().await.unwrap();
}

/// Delegates to a failing [`Recorder`] and reports figures with awkward labels and values.
struct Awkward(Recorder);

#[async_trait]
impl Adapter for Awkward {
    fn name(&self) -> &str {
        "awk\"ward"
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        self.0.on_batch(batch).await
    }

    fn metrics(&self, out: &mut Vec<AdapterMetric>) {
        out.push(AdapterMetric::gauge("peer_connected", "1 when the peer's connection is up.", 1.0).label("peer", "a"));
        out.push(AdapterMetric::gauge(
            "peer_lag_seconds",
            "How far the peer is behind.\nSecond line \\ here.",
            f64::NAN,
        ));
        out.push(
            AdapterMetric::gauge("peer_connected", "1 when the peer's connection is up.", 0.0)
                .label("peer", "b \"quoted\" \\ back\nslash"),
        );
        out.push(AdapterMetric::gauge("peer_window_bytes", "Unbounded.", f64::INFINITY));
        out.push(AdapterMetric::counter("peer_sent_events_total", "Events sent.", u64::MAX >> 12));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_by_cause_and_awkward_adapter_figures_parse_back() {
    let retry = RetryPolicy { max_attempts: 2, initial_backoff_ms: 1, max_backoff_ms: 2, ..Default::default() };
    let config =
        EventBusConfig::builder().shards(2).batch(BatchConfig::default().max_events(16).retry(retry)).build().unwrap();
    let bus = EventBus::with_adapter(config, Arc::new(Awkward(Recorder::new(Fault::FatalEvery(3))))).await.unwrap();
    for i in 0..2000u32 {
        bus.ingest_raw(RawEvent::from_bytes(i.to_le_bytes().to_vec())).unwrap();
        if i % 100 == 99 {
            bus.flush().await.unwrap(); // many batches, so every third one fails
        }
    }
    bus.flush().await.unwrap();
    let snapshot = bus.stats().snapshot();
    assert!(snapshot.dropped_adapter_fatal > 0 && snapshot.is_balanced(), "{snapshot:?}");

    let doc: Value = serde_json::from_str(&bus.stats_json()).unwrap();
    assert_eq!(doc["totals"]["dropped_adapter_fatal"], snapshot.dropped_adapter_fatal);
    assert_eq!(doc["totals"]["events_dropped"], snapshot.events_dropped);
    assert_eq!(doc["adapter"]["name"], "awk\"ward");
    assert!(doc["adapter"]["last_error"].as_str().is_some_and(|e| e.contains("call")));
    let metrics = doc["adapter"]["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 5);
    assert_eq!(metrics[1]["value"], Value::Null, "NaN has no JSON form");
    assert_eq!(metrics[2]["labels"]["peer"], "b \"quoted\" \\ back\nslash");
    assert_eq!(metrics[4]["kind"], "counter");

    let families = parse_prometheus(&bus.stats_prometheus());
    let dropped =
        |cause| value(&families, "purple_rain_events_dropped", "purple_rain_events_dropped_total", &[("cause", cause)]);
    assert_eq!(dropped("adapter_fatal"), snapshot.dropped_adapter_fatal as f64);
    assert_eq!(dropped("evicted") + dropped("retry_exhausted") + dropped("lost"), 0.0);
    assert_eq!(sum(&families, "purple_rain_events_dropped"), snapshot.events_dropped as f64);
    assert_eq!(
        value(&families, "purple_rain_adapter_info", "purple_rain_adapter_info", &[("adapter", "awk\"ward")]),
        1.0
    );
    // Interleaved names come out as one family each, escaped label values round-trip.
    let connected = &families["purple_rain_peer_connected"];
    assert_eq!(connected.samples.len(), 2);
    assert_eq!(value(&families, "purple_rain_peer_connected", "purple_rain_peer_connected", &[("peer", "a")]), 1.0);
    let awkward_peer = [("peer", "b \"quoted\" \\ back\nslash")];
    assert_eq!(value(&families, "purple_rain_peer_connected", "purple_rain_peer_connected", &awkward_peer), 0.0);
    assert_eq!(families["purple_rain_peer_lag_seconds"].help, "How far the peer is behind.\nSecond line \\ here.");
    assert!(value(&families, "purple_rain_peer_lag_seconds", "purple_rain_peer_lag_seconds", &[]).is_nan());
    assert_eq!(value(&families, "purple_rain_peer_window_bytes", "purple_rain_peer_window_bytes", &[]), f64::INFINITY);
    assert_eq!(families["purple_rain_peer_sent_events"].kind, "counter");
    assert_eq!(
        value(&families, "purple_rain_peer_sent_events", "purple_rain_peer_sent_events_total", &[]),
        (u64::MAX >> 12) as f64
    );
    bus.shutdown().await.unwrap();
}
