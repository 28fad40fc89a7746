//! What the integration tests share; each test crate includes it with `mod common;`.
//!
//! - `events.rs`: the one test payload, draining a bus page by page, and the checks on what
//!   comes back (exactly once, stats balanced).
//! - `recorder.rs`: an adapter that records what it receives and injects faults.
//! - `mesh.rs`: buses joined by the Net adapter on loopback, and the mesh checks.
//! - `proxy.rs`: a TCP proxy that flips, replays, cuts or blackholes one Net record.
//! - `link.rs`: a TCP link whose faults (delay, drop, cut, blackhole) a test switches at will.
//! - `outage.rs`: a producer that keeps ingesting across a broker outage.
//! - `process.rs`: the stdout lines of a child process a test drives.
//! - `prometheus.rs`: the Prometheus exposition parsed by `prometheus_client`.
//! - `servers.rs`: free ports and unique prefixes; `redis.rs` and `nats.rs`: real servers of a
//!   test's own, started on free ports and stopped on drop (behind their features).
#![allow(dead_code, unused_imports)]

mod events;
pub mod link;
pub mod mesh;
#[cfg(feature = "jetstream")]
pub mod nats;
mod outage;
pub mod process;
pub mod prometheus;
pub mod proxy;
mod recorder;
#[cfg(feature = "redis")]
pub mod redis;
mod servers;

pub use events::{assert_balanced, assert_exactly_once, block, drain, flush, payload, shutdown, Drained};
pub use mesh::poll_until;
pub use outage::OutageProducer;
pub use recorder::{Delivered, Fault, Recorder};
pub use servers::{free_port, unique_prefix};
