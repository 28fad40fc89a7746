//! Figures an adapter reports about itself (connection state, peers, recovery, retention), in
//! one shape that the stats JSON and the Prometheus exposition both render.
//!
//! An adapter appends its current figures with [`Adapter::metrics`](super::Adapter::metrics)
//! when stats are read; nothing is collected on the hot path. Names follow Prometheus
//! conventions without the `purple_rain_` prefix the renderers add: snake case, a unit suffix
//! where there is a unit, `_total` on counters (e.g. `net_peer_sent_events_total`).

/// Whether a figure only grows or may move both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricKind {
    /// Monotonic since the adapter started (Prometheus `counter`).
    Counter,
    /// A current value (Prometheus `gauge`): a state, a lag, a size.
    Gauge,
}

/// One figure, with the labels that tell its instances apart (e.g. `peer="10.0.0.2:7777"`).
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterMetric {
    /// Metric name (snake case, `_total` for counters).
    pub name: &'static str,
    /// One line saying what it measures.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// Label pairs; empty for a figure of the whole adapter.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

impl AdapterMetric {
    /// A counter without labels.
    pub fn counter(name: &'static str, help: &'static str, value: u64) -> Self {
        Self { name, help, kind: MetricKind::Counter, labels: Vec::new(), value: value as f64 }
    }

    /// A gauge without labels.
    pub fn gauge(name: &'static str, help: &'static str, value: f64) -> Self {
        Self { name, help, kind: MetricKind::Gauge, labels: Vec::new(), value }
    }

    /// Adds a label.
    pub fn label(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.labels.push((name, value.into()));
        self
    }
}
