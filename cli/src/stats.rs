//! `stats`: how many events each shard holds, or how far a consumer's cursor lags behind, and
//! the adapter's own figures; once, or every `--watch` interval with the rate since.
//!
//! Another process's counters (what a producer dropped, say) live in that process; what any
//! process can see is the store. So the first report reads each shard's log once from the
//! cursor (or the start) and counts; every later one reads only what arrived since.

use crate::config::{BusArgs, Role};
use crate::exit::{Failure, OK, REQUEST};
use crate::interrupt::Interrupt;
use crate::units;
use purple_rain::adapter::AdapterMetric;
use purple_rain::consume::Cursor;
use purple_rain::{ConsumeRequest, ConsumeResponse, EventBus};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Events per read while counting.
const SCAN_PAGE: usize = 10_000;

/// Arguments of `stats`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusArgs,
    /// Count only the events past this consumer cursor: the consumer's lag, per shard.
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    /// Report again every DURATION (e.g. 1s) with the events that arrived since, until Ctrl-C.
    #[arg(long, value_name = "DURATION", value_parser = units::duration)]
    pub watch: Option<Duration>,
    /// table for people, json for programs, prometheus for the text exposition format.
    #[arg(long, value_enum, default_value_t = StatsFormat::Table)]
    pub format: StatsFormat,
}

/// `--format` of `stats`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsFormat {
    Table,
    Json,
    Prometheus,
}

/// One report.
struct Report {
    adapter: String,
    /// Counting events past a consumer cursor (lag) rather than from the start (retained).
    lag: bool,
    /// Events per shard.
    events: BTreeMap<u16, u64>,
    /// Events per second per shard since the previous report (`--watch` only).
    rates: Option<BTreeMap<u16, f64>>,
    metrics: Vec<AdapterMetric>,
    last_error: Option<String>,
    /// The library's own stats JSON and Prometheus text of this process's bus: its counters
    /// (all zero here: this process ingests nothing) and the adapter's figures.
    bus_json: Value,
    bus_prometheus: String,
}

/// Runs `stats`; returns the exit code.
pub async fn run(args: Args, interrupt: Interrupt) -> Result<u8, Failure> {
    let mut cursor = match &args.cursor {
        Some(c) => {
            Cursor::decode(c.trim()).map_err(|e| Failure::new(REQUEST, format!("--cursor: invalid cursor: {e}")))?;
            c.trim().to_owned()
        }
        None => String::new(),
    };
    let config = args.bus.resolve(Role::Reader)?;
    let adapter = serde_json::to_value(&config.adapter)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let bus = EventBus::new(config).await.map_err(Failure::start)?;
    let mut events: BTreeMap<u16, u64> = bus.shard_ids().into_iter().map(|s| (s, 0)).collect();
    let result = async {
        let mut previous: Option<(Instant, BTreeMap<u16, u64>)> = None;
        loop {
            let counted = tokio::select! {
                counted = count(&bus, &mut cursor, &mut events) => counted,
                () = interrupt.wait() => return Ok(()),
            };
            counted?;
            let now = Instant::now();
            let rates = previous.as_ref().map(|(then, before)| {
                let secs = now.duration_since(*then).as_secs_f64().max(1e-9);
                events.iter().map(|(s, n)| (*s, (n - before.get(s).copied().unwrap_or(0)) as f64 / secs)).collect()
            });
            let report = Report {
                adapter: adapter.clone(),
                lag: args.cursor.is_some(),
                events: events.clone(),
                rates,
                metrics: bus.stats().adapter_metrics(),
                last_error: bus.stats().last_adapter_error(),
                bus_json: serde_json::from_str(&bus.stats_json()).unwrap_or(Value::Null),
                bus_prometheus: bus.stats_prometheus(),
            };
            print!("{}", report.render(args.format));
            let Some(every) = args.watch else { return Ok(()) };
            previous = Some((now, events.clone()));
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = interrupt.wait() => return Ok(()),
            }
        }
    }
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), bus.shutdown_via_ref()).await;
    result.map(|()| OK)
}

/// Reads from `cursor` to the end of every shard, adding what it finds to `events`.
async fn count(bus: &EventBus, cursor: &mut String, events: &mut BTreeMap<u16, u64>) -> Result<(), Failure> {
    let mut page = ConsumeResponse::default();
    loop {
        let request = ConsumeRequest::new(SCAN_PAGE).from(cursor.as_str());
        bus.poll_into(request, &mut page).await.map_err(Failure::poll)?;
        for event in &page.events {
            *events.entry(event.shard).or_default() += 1;
        }
        cursor.clone_from(&page.cursor);
        if !page.has_more {
            return Ok(());
        }
    }
}

impl Report {
    fn total(&self) -> u64 {
        self.events.values().sum()
    }

    fn what(&self) -> &'static str {
        if self.lag {
            "events past the cursor (consumer lag)"
        } else {
            "events retained"
        }
    }

    fn render(&self, format: StatsFormat) -> String {
        match format {
            StatsFormat::Table => self.table(),
            StatsFormat::Json => format!("{}\n", self.json()),
            StatsFormat::Prometheus => self.prometheus(),
        }
    }

    fn table(&self) -> String {
        let mut out = format!("adapter {}: {} per shard\n", self.adapter, self.what());
        let _ = writeln!(out, "{:>5}  {:>12}  {:>10}", "SHARD", if self.lag { "LAG" } else { "EVENTS" }, "NEW/S");
        for (shard, n) in &self.events {
            let rate = self.rates.as_ref().and_then(|r| r.get(shard)).map_or("-".to_owned(), |r| format!("{r:.0}"));
            let _ = writeln!(out, "{shard:>5}  {n:>12}  {rate:>10}");
        }
        let _ = writeln!(out, "{:>5}  {:>12}", "all", self.total());
        for m in &self.metrics {
            let _ = writeln!(out, "{}{} {}", m.name, labels(&m.labels), m.value);
        }
        if let Some(e) = &self.last_error {
            let _ = writeln!(out, "last adapter error: {e}");
        }
        out
    }

    fn json(&self) -> Value {
        let shards: Vec<Value> = self
            .events
            .iter()
            .map(|(shard, n)| {
                let rate = self.rates.as_ref().and_then(|r| r.get(shard)).copied();
                json!({"shard": shard, "events": n, "events_per_sec": rate})
            })
            .collect();
        json!({
            "adapter": self.adapter,
            "counted": if self.lag { "lag" } else { "retained" },
            "events": self.total(),
            "shards": shards,
            "bus": self.bus_json,
        })
    }

    fn prometheus(&self) -> String {
        let (name, help) = if self.lag {
            ("purple_rain_consumer_lag_events", "Events past the consumer's cursor, per shard.")
        } else {
            ("purple_rain_shard_events", "Events retained in the shard.")
        };
        let mut out = format!("# HELP {name} {help}\n# TYPE {name} gauge\n");
        for (shard, n) in &self.events {
            let _ = writeln!(out, "{name}{{adapter=\"{}\",shard=\"{shard}\"}} {n}", self.adapter);
        }
        out.push_str(&self.bus_prometheus);
        out
    }
}

/// `{a="x",b="y"}`, escaped as the exposition format requires; empty without labels.
fn labels(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let escaped = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escaped(v))).collect();
    format!("{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(lag: bool) -> Report {
        Report {
            adapter: "redis".into(),
            lag,
            events: BTreeMap::from([(0, 5), (1, 7)]),
            rates: Some(BTreeMap::from([(0, 2.0), (1, 0.0)])),
            metrics: vec![AdapterMetric::gauge("net_peer_up", "Peer connected.", 1.0).label("peer", "a\"b")],
            last_error: None,
            bus_json: json!({"events_ingested": 0}),
            bus_prometheus: "purple_rain_events_ingested_total 0\n".into(),
        }
    }

    #[test]
    fn prometheus_text_has_the_store_family_then_the_bus_exposition() {
        let text = report(true).prometheus();
        assert!(text.contains("# TYPE purple_rain_consumer_lag_events gauge"));
        assert!(text.contains("purple_rain_consumer_lag_events{adapter=\"redis\",shard=\"1\"} 7"));
        assert!(text.ends_with("purple_rain_events_ingested_total 0\n"));
    }

    #[test]
    fn table_labels_are_escaped() {
        assert!(report(false).table().contains("net_peer_up{peer=\"a\\\"b\"} 1"));
    }

    #[test]
    fn json_sums_the_shards() {
        let v = report(false).json();
        assert_eq!(v["events"], 12);
        assert_eq!(v["counted"], "retained");
        assert_eq!(v["shards"][0]["events_per_sec"], 2.0);
        assert_eq!(v["bus"]["events_ingested"], 0);
    }
}
