//! The Prometheus text exposition (format 0.0.4) of the same figures as the stats JSON.
//!
//! Written by hand rather than through a metrics crate: the figures already exist as sums read
//! on demand, and the crates want them registered as their own live metric objects. The format
//! is small (one `# HELP` and `# TYPE` per family, samples grouped under it, escaped label
//! values), and `tests/stats_export.rs` parses the output with Prometheus' own Python parser.
//! Names carry the `purple_rain_` prefix, counters end in `_total`. Per-shard families list the
//! live shards only: a retired shard's figures stay in the bus totals, and its id must not
//! appear twice if it is ever reused.

use super::report::{pending, Report};
use crate::adapter::{AdapterMetric, MetricKind};
use std::fmt::Write as _;

const PREFIX: &str = "purple_rain_";

pub(crate) fn render(report: &Report) -> String {
    let mut out = Exposition(String::with_capacity(4096));
    let t = &report.totals;
    let totals: [(&str, &str, u64); 7] = [
        ("events_ingested_total", "Events accepted by ingest.", t.events_ingested),
        ("events_dispatched_total", "Events the adapter accepted.", t.events_dispatched),
        ("batches_dispatched_total", "Batches the adapter accepted.", t.batches_dispatched),
        (
            "events_rejected_backpressure_total",
            "Events refused with a back-pressure error (never ingested, so not drops).",
            t.rejected_backpressure,
        ),
        ("producer_blocked_waits_total", "Times a producer waited for room in block mode.", t.blocked_waits),
        ("batch_retries_total", "Batch retries after retryable adapter errors.", t.retries),
        (
            "events_trimmed_total",
            "Events the adapter discarded for retention (dispatched first, so not drops).",
            t.events_trimmed,
        ),
    ];
    for (name, help, value) in totals {
        out.family(name, MetricKind::Counter, help);
        out.sample(name, &[], value);
    }
    let dropped = "events_dropped_total";
    out.family(dropped, MetricKind::Counter, "Accepted events that will never reach the adapter, by cause.");
    for (cause, value) in [
        ("evicted", t.dropped_evicted),
        ("adapter_fatal", t.dropped_adapter_fatal),
        ("retry_exhausted", t.dropped_retry_exhausted),
        ("lost", t.dropped_lost),
    ] {
        out.sample(dropped, &[("cause", cause)], value);
    }
    let gauges: [(&str, &str, u64); 4] = [
        (
            "events_pending",
            "Accepted events not yet dispatched or dropped (queued or being delivered).",
            pending(t.events_ingested, t.events_dispatched, t.events_dropped),
        ),
        ("shards", "Live shards.", report.live_shards().count() as u64),
        ("workers_running", "Shard worker tasks that exist.", report.workers_running as u64),
        ("shutdown_lossy", "1 once a shutdown completed after dropping any event.", u64::from(t.shutdown_was_lossy)),
    ];
    for (name, help, value) in gauges {
        out.family(name, MetricKind::Gauge, help);
        out.sample(name, &[], value);
    }

    type ShardFigure = fn(&super::ShardStats) -> u64;
    let per_shard: [(&str, MetricKind, &str, ShardFigure); 8] = [
        ("shard_events_ingested_total", MetricKind::Counter, "Events accepted into the shard.", |s| s.events_ingested),
        ("shard_events_dispatched_total", MetricKind::Counter, "Events of the shard the adapter accepted.", |s| {
            s.events_dispatched
        }),
        ("shard_events_dropped_total", MetricKind::Counter, "Events of the shard dropped, all causes.", |s| {
            s.events_dropped
        }),
        ("shard_batches_dispatched_total", MetricKind::Counter, "Batches of the shard the adapter accepted.", |s| {
            s.batches_dispatched
        }),
        (
            "shard_events_rejected_backpressure_total",
            MetricKind::Counter,
            "Events refused by the shard with back-pressure.",
            |s| s.rejected_backpressure,
        ),
        ("shard_events_pending", MetricKind::Gauge, "Events of the shard not yet dispatched or dropped.", |s| {
            pending(s.events_ingested, s.events_dispatched, s.events_dropped)
        }),
        ("shard_ring_events", MetricKind::Gauge, "Events in the shard's ring now.", |s| s.ring_len as u64),
        ("shard_ring_capacity_events", MetricKind::Gauge, "Slots of the shard's ring.", |s| s.ring_capacity as u64),
    ];
    for (name, kind, help, figure) in per_shard {
        out.family(name, kind, help);
        for shard in report.live_shards() {
            out.sample(name, &[("shard", &shard.id.to_string())], figure(shard));
        }
    }

    out.family("adapter_info", MetricKind::Gauge, "The bus's adapter, by name (always 1).");
    out.sample("adapter_info", &[("adapter", &report.adapter_name)], 1);
    adapter_families(&mut out, &report.adapter);
    out.0
}

/// The adapter's figures, one family per name in first-seen order (the format wants a
/// family's samples together; an adapter may report them interleaved).
fn adapter_families(out: &mut Exposition, metrics: &[AdapterMetric]) {
    let mut names: Vec<&str> = Vec::new();
    for m in metrics {
        if !names.contains(&m.name) {
            names.push(m.name);
        }
    }
    for name in names {
        let mut family = metrics.iter().filter(|m| m.name == name).peekable();
        let Some(first) = family.peek() else { continue };
        out.family(name, first.kind, first.help);
        for m in family {
            let labels: Vec<(&str, &str)> = m.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            out.sample(name, &labels, FloatValue(m.value));
        }
    }
}

struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: MetricKind, help: &str) {
        let kind = match kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        };
        // Writing to a String cannot fail.
        let _ = write!(self.0, "# HELP {PREFIX}{name} ");
        escape(&mut self.0, help, false);
        let _ = writeln!(self.0, "\n# TYPE {PREFIX}{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl SampleValue) {
        let _ = write!(self.0, "{PREFIX}{name}");
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{label}=\"");
                escape(&mut self.0, value, true);
                self.0.push('"');
            }
            self.0.push('}');
        }
        self.0.push(' ');
        value.write(&mut self.0);
        self.0.push('\n');
    }
}

/// Backslash and newline are escaped in help text and label values, double quotes in label
/// values only.
fn escape(out: &mut String, text: &str, quote: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

trait SampleValue {
    fn write(self, out: &mut String);
}

impl SampleValue for u64 {
    fn write(self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

struct FloatValue(f64);

impl SampleValue for FloatValue {
    fn write(self, out: &mut String) {
        let v = self.0;
        if v.is_nan() {
            out.push_str("NaN");
        } else if v.is_infinite() {
            out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{v}");
        }
    }
}
