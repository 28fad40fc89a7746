//! Purple Rain: a sharded, high-throughput event bus.
//!
//! `ingest` hashes an event to a shard and pushes it onto that shard's lock-free ring; a worker
//! per shard drains the ring in batches to an adapter (in-memory log, Noop, brokers); `poll`
//! reads pages back with an opaque cursor, filtered and merged across shards. The same bus is
//! exported as a C ABI (`include/purple_rain.h`) with Node and Go bindings on top.
//!
//! # Layers
//!
//! Modules import only from the layers below them, never from above or from each other in a
//! circle (`.ci/layers` checks it on every run). Bottom to top:
//!
//! 1. [`error`], `sync`, [`runtime`], [`log`]: error types, the atomics shim (loom under test),
//!    the library's own tokio runtime, where log events go for non-Rust hosts.
//! 2. [`config`]: plain data, validated: the bus, batch, retry, back-pressure, adapter and
//!    scaling settings and the limits.
//! 3. [`model`]: the shapes every stage shares: [`RawEvent`], [`Batch`], [`StoredEvent`],
//!    [`ProducerIdentity`].
//! 4. [`filter`]: poll filters, compiled once and matched against payloads (adapters run them).
//! 5. [`adapter`]: the [`Adapter`] contract (`ShardRead`/`ShardPage`, [`IdPool`], metrics) and
//!    the backends.
//! 6. `ingest`: consistent routing, per-shard rings with back-pressure, shard counters.
//! 7. `stats`: counters summed over shards.
//! 8. `dispatch`: shard workers that drain rings into batches for the adapter, with retry.
//! 9. [`consume`]: poll requests, cursors, the sequence and timestamp merges, long poll.
//! 10. [`scaling`]: load measurement and scaling decisions.
//! 11. `bus`: [`EventBus`], which wires the stages together: lifecycle, flush, shard changes.
//! 12. [`ffi`]: the C ABI over the bus.
//!
//! ```
//! use purple_rain::{AdapterConfig, ConsumeRequest, EventBus, EventBusConfig, RawEvent};
//! # purple_rain::runtime::wait(async {
//! let bus = EventBus::new(EventBusConfig::builder().adapter(AdapterConfig::memory()).build()?).await?;
//! bus.ingest_raw(RawEvent::from_bytes(&br#"{"n":1}"#[..]))?;
//! bus.flush().await?;
//! let page = bus.poll(ConsumeRequest::new(100)).await?;
//! assert_eq!(page.events[0].payload.as_ref(), br#"{"n":1}"#);
//! bus.shutdown().await?;
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! # }).unwrap();
//! ```

#![warn(missing_docs, unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod error;
pub mod log;
pub mod runtime;
mod sync;

pub mod adapter;
mod bus;
pub mod config;
pub mod consume;
mod dispatch;
pub mod ffi;
pub mod filter;
mod ingest;
pub mod model;
pub mod scaling;
mod stats;

pub use adapter::{Adapter, IdPool};
pub use bus::{EventBus, FlushReport};
pub use config::{
    AdapterConfig, BackpressureMode, BatchConfig, DiskAdapterConfig, DiskFsync, EventBusConfig, EventBusConfigBuilder,
    MemoryAdapterConfig, NetAdapterConfig, RedisAdapterConfig, RetryPolicy, ScalingPolicy,
};
pub use consume::{ConsumeRequest, ConsumeResponse, Ordering};
pub use error::{
    AdapterError, ConfigError, ConsumerError, ConsumerResult, FlushError, IngestionError, IngestionResult, ScalingError,
};
pub use filter::Filter;
pub use model::{Batch, Event, ProducerIdentity, RawEvent, StoredEvent};
pub use scaling::ScalingDecision;
pub use stats::{Counter, EventBusStats, ShardStats, StatsSnapshot, STATS_SCHEMA_VERSION};

/// Crate version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
