//! The stats JSON document (schema in README.md, "Monitoring"): totals with the names of the C
//! `pr_stats` fields, one object per shard, and the adapter's own figures.

use super::report::{pending, Report, STATS_SCHEMA_VERSION};
use crate::adapter::MetricKind;
use serde_json::{json, Map, Value};

pub(crate) fn render(report: &Report) -> String {
    let t = &report.totals;
    let shards: Vec<Value> = report
        .shards
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "retired": s.retired,
                "events_ingested": s.events_ingested,
                "events_dispatched": s.events_dispatched,
                "events_dropped": s.events_dropped,
                "events_pending": pending(s.events_ingested, s.events_dispatched, s.events_dropped),
                "batches_dispatched": s.batches_dispatched,
                "rejected_backpressure": s.rejected_backpressure,
                "ring_len": s.ring_len,
                "ring_capacity": s.ring_capacity,
            })
        })
        .collect();
    let metrics: Vec<Value> = report
        .adapter
        .iter()
        .map(|m| {
            let labels: Map<String, Value> =
                m.labels.iter().map(|(k, v)| ((*k).to_owned(), Value::String(v.clone()))).collect();
            json!({
                "name": m.name,
                "kind": match m.kind { MetricKind::Counter => "counter", MetricKind::Gauge => "gauge" },
                "help": m.help,
                "labels": labels,
                // JSON has no NaN or infinity: those become null.
                "value": m.value,
            })
        })
        .collect();
    json!({
        "schema": STATS_SCHEMA_VERSION,
        "version": env!("CARGO_PKG_VERSION"),
        "totals": {
            "events_ingested": t.events_ingested,
            "events_dispatched": t.events_dispatched,
            "events_dropped": t.events_dropped,
            "events_pending": pending(t.events_ingested, t.events_dispatched, t.events_dropped),
            "batches_dispatched": t.batches_dispatched,
            "dropped_evicted": t.dropped_evicted,
            "dropped_adapter_fatal": t.dropped_adapter_fatal,
            "dropped_retry_exhausted": t.dropped_retry_exhausted,
            "dropped_lost": t.dropped_lost,
            "rejected_backpressure": t.rejected_backpressure,
            "blocked_waits": t.blocked_waits,
            "retries": t.retries,
            "events_trimmed": t.events_trimmed,
            "shutdown_was_lossy": t.shutdown_was_lossy,
            "workers_running": report.workers_running,
            "shards": report.live_shards().count(),
        },
        "shards": shards,
        "adapter": {
            "name": report.adapter_name,
            "last_error": report.last_adapter_error,
            "metrics": metrics,
        },
    })
    .to_string()
}
