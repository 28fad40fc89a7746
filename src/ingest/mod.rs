//! The ingest path: consistent routing, and per-shard rings with back-pressure and counters.
//!
//! `route_table.rs` maps an event's hash to a live shard (consistent hashing);
//! `published_routes.rs` is the live shard set with its table, as producers load it (cached per
//! thread); `ring.rs` is a shard's queue, `shard.rs` the shard around it with back-pressure and
//! the worker wake-up, `counters.rs` its counters.

mod counters;
mod published_routes;
pub(crate) mod ring;
mod route_table;
mod shard;

pub(crate) use published_routes::{PublishedRoutes, Routes};
pub(crate) use shard::{Shard, ShardPushError};
