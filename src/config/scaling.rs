//! When the bus should change its shard count: the bounds and thresholds of the scaling policy.
//! The scaler that applies them is `crate::scaling`.

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Bounds and thresholds for scaling decisions.
///
/// A shard is *hot* when its ring is fuller than `fill_ratio_high` or it takes more than
/// `ingest_rate_high` events/s, or producers met back-pressure on it in the last window; the
/// bus is *idle* when every shard is below `fill_ratio_low` and `ingest_rate_low`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalingPolicy {
    /// Fewest shards.
    pub min_shards: u16,
    /// Most shards.
    pub max_shards: u16,
    /// Apply decisions automatically in a background task.
    pub auto: bool,
    /// Ring fill ratio above which a shard is hot (0..=1).
    pub fill_ratio_high: f64,
    /// Ring fill ratio below which a shard counts as idle (0..=1, below the high mark).
    pub fill_ratio_low: f64,
    /// Events/s per shard above which a shard is hot.
    pub ingest_rate_high: f64,
    /// Events/s per shard below which a shard counts as idle.
    pub ingest_rate_low: f64,
    /// Minimum time between two applied decisions.
    #[serde(rename = "cooldown_ms", with = "millis")]
    pub cooldown: Duration,
    /// How long the bus must stay idle before a scale-down.
    #[serde(rename = "scale_down_delay_ms", with = "millis")]
    pub scale_down_delay: Duration,
}

impl Default for ScalingPolicy {
    fn default() -> Self {
        Self {
            min_shards: 1,
            max_shards: 64,
            auto: false,
            fill_ratio_high: 0.75,
            fill_ratio_low: 0.05,
            ingest_rate_high: 2_000_000.0,
            ingest_rate_low: 10_000.0,
            cooldown: Duration::from_secs(5),
            scale_down_delay: Duration::from_secs(60),
        }
    }
}

impl ScalingPolicy {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, reason: &str| Err(ConfigError::invalid(&format!("scaling.{field}"), reason));
        if self.min_shards == 0 {
            return bad("min_shards", "must be at least 1");
        }
        if self.max_shards < self.min_shards {
            return bad("max_shards", "must be at least min_shards");
        }
        if self.max_shards > super::MAX_SHARDS {
            return bad("max_shards", "exceeds the maximum shard count");
        }
        for (field, v) in [("fill_ratio_high", self.fill_ratio_high), ("fill_ratio_low", self.fill_ratio_low)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(field, "must be a number in [0, 1]");
            }
        }
        if self.fill_ratio_low >= self.fill_ratio_high {
            return bad("fill_ratio_low", "must be below fill_ratio_high");
        }
        for (field, v) in [("ingest_rate_high", self.ingest_rate_high), ("ingest_rate_low", self.ingest_rate_low)] {
            if !v.is_finite() || v < 0.0 {
                return bad(field, "must be a finite number >= 0");
            }
        }
        if self.ingest_rate_low >= self.ingest_rate_high {
            return bad("ingest_rate_low", "must be below ingest_rate_high");
        }
        if self.cooldown.is_zero() {
            return bad("cooldown_ms", "must be at least 1");
        }
        Ok(())
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
