//! Purple Rain: a sharded, high-throughput event bus.
//!
//! `ingest` hashes an event to a shard and pushes it onto that shard's lock-free ring; a worker
//! per shard drains the ring in batches to an adapter (in-memory log, Noop, brokers); `poll`
//! reads pages back with an opaque cursor, filtered and merged across shards. The same bus is
//! exported as a C ABI (`include/purple_rain.h`) with Node and Go bindings on top.
//!
//! The tree follows the data: [`ingest`] (events, routing, rings, back-pressure) →
//! [`dispatch`] (batch workers, retry, dedup ids) → [`adapter`] (backends) → [`consume`]
//! (poll, cursor, filter, merge); [`scaling`] changes the shard set; [`ffi`] is the C ABI.
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

pub mod adapter;
mod bus;
pub mod config;
pub mod consume;
pub mod dispatch;
pub mod error;
pub mod ffi;
pub mod ingest;
pub mod runtime;
pub mod scaling;
mod stats;
mod sync;

pub use adapter::{Adapter, AdapterConfig, MemoryAdapterConfig, NetAdapterConfig, RedisAdapterConfig};
pub use bus::EventBus;
pub use config::{BackpressureMode, BatchConfig, EventBusConfig, EventBusConfigBuilder, RetryPolicy};
pub use consume::{ConsumeRequest, ConsumeResponse, Filter, IdPool, Ordering, StoredEvent};
pub use dispatch::{Batch, ProducerIdentity};
pub use error::{
    AdapterError, ConfigError, ConsumerError, ConsumerResult, IngestionError, IngestionResult, ScalingError,
};
pub use ingest::{Event, RawEvent};
pub use scaling::{ScalingDecision, ScalingPolicy};
pub use stats::{Counter, EventBusStats, ShardStats, StatsSnapshot};

/// Crate version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
