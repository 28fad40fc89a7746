//! The ingest path: events, consistent routing, and per-shard rings with back-pressure.

mod event;
pub(crate) mod ring;
pub(crate) mod routes;
pub(crate) mod routing;
mod shard;

pub use event::{Event, RawEvent};
pub(crate) use shard::{Shard, ShardPushError};
