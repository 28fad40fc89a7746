//! The ingest path: consistent routing, and per-shard rings with back-pressure and counters.

mod counters;
pub(crate) mod ring;
pub(crate) mod routes;
pub(crate) mod routing;
mod shard;

pub(crate) use shard::{Shard, ShardPushError};
