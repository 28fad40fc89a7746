//! One reading of every figure the stats exports show, taken once so that the JSON document
//! and the Prometheus exposition of the same call agree with each other.

use super::{EventBusStats, ShardStats, StatsSnapshot};
use crate::adapter::AdapterMetric;

/// Schema version of the stats JSON; bumped when a field changes meaning or goes away (new
/// fields may appear without a bump).
pub const STATS_SCHEMA_VERSION: u32 = 1;

/// What `stats_json` and `stats_prometheus` render.
pub(crate) struct Report {
    pub(crate) totals: StatsSnapshot,
    pub(crate) workers_running: usize,
    /// Live and draining shards first (those with `retired == false`), then retired ones.
    pub(crate) shards: Vec<ShardStats>,
    pub(crate) adapter_name: String,
    pub(crate) adapter: Vec<AdapterMetric>,
    pub(crate) last_adapter_error: Option<String>,
}

impl Report {
    pub(crate) fn read(stats: &EventBusStats) -> Self {
        Self {
            totals: stats.snapshot(),
            workers_running: stats.workers_running(),
            shards: stats.shards(),
            adapter_name: stats.adapter_name().to_owned(),
            adapter: stats.adapter_metrics(),
            last_adapter_error: stats.last_adapter_error(),
        }
    }

    /// Shards that still route or drain.
    pub(crate) fn live_shards(&self) -> impl Iterator<Item = &ShardStats> {
        self.shards.iter().filter(|s| !s.retired)
    }
}

/// Accepted events not yet dispatched or dropped: in a ring or in a batch being delivered.
pub(crate) fn pending(ingested: u64, dispatched: u64, dropped: u64) -> u64 {
    ingested.saturating_sub(dispatched.saturating_add(dropped))
}
