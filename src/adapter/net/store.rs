//! The node's local log: the Memory adapter's (the default) or the Disk adapter's (a durable
//! node, `NetAdapterConfig::disk`). Only what the connections and the adapter need of it: append
//! a run of (origin, timestamp, payload), scan from a position, the end and the shards; polls go
//! to the log as to any adapter.

use super::super::memory::Origin;
use super::super::{Adapter, DiskAdapter, MemoryAdapter};
use crate::config::{MemoryAdapterConfig, NetAdapterConfig};
use crate::error::AdapterError;
use bytes::Bytes;

/// One of the two logs.
pub(super) enum Store {
    Memory(MemoryAdapter),
    Disk(DiskAdapter),
}

impl Store {
    /// The log `config` asks for; a Disk log is opened (and recovered) now.
    pub(super) fn open(config: &NetAdapterConfig) -> Result<Self, AdapterError> {
        Ok(match &config.disk {
            Some(disk) => Self::Disk(DiskAdapter::open_for_net(disk.clone())?),
            None => Self::Memory(MemoryAdapter::new(MemoryAdapterConfig {
                max_events_per_shard: config.max_events_per_shard,
                max_bytes_per_shard: config.max_bytes_per_shard,
            })),
        })
    }

    /// The log as an adapter, for polls, shards, trimming and metrics.
    pub(super) fn adapter(&self) -> &dyn Adapter {
        match self {
            Self::Memory(memory) => memory,
            Self::Disk(disk) => disk,
        }
    }

    /// The Disk log, when the node is durable.
    pub(super) fn disk(&self) -> Option<&DiskAdapter> {
        match self {
            Self::Memory(_) => None,
            Self::Disk(disk) => Some(disk),
        }
    }

    /// Appends `events` (origin, timestamp, payload) to `shard` at the log's next positions.
    pub(super) fn append<'a>(
        &self,
        shard: u16,
        size_hint: usize,
        events: impl Iterator<Item = (Origin, u64, &'a [u8])>,
    ) -> Result<(), AdapterError> {
        match self {
            Self::Memory(memory) => memory.append(shard, size_hint, events).map(|_| ()),
            Self::Disk(disk) => {
                let events: Vec<_> = events.collect();
                disk.append_origins(shard, &events)
            }
        }
    }

    /// The position the next event appended to `shard` gets.
    pub(super) fn end_of(&self, shard: u16) -> u64 {
        match self {
            Self::Memory(memory) => memory.end_of(shard),
            Self::Disk(disk) => disk.end_of(shard),
        }
    }

    /// Calls `visit(position, origin, timestamp, payload)` from `from` on, until `max_bytes` of
    /// payload (at least one event) or the end; returns the position after the last visited and
    /// how many events before the oldest retained one were trimmed.
    pub(super) fn scan(
        &self,
        shard: u16,
        from: u64,
        max_bytes: usize,
        mut visit: impl FnMut(u64, Origin, u64, &Bytes),
    ) -> Result<(u64, u64), AdapterError> {
        match self {
            Self::Memory(memory) => memory.scan(shard, from, max_bytes, visit),
            Self::Disk(disk) => disk.scan(shard, from, max_bytes, &mut visit),
        }
    }

    /// Shards holding events.
    pub(super) fn stored_shards(&self) -> Vec<u16> {
        self.adapter().stored_shards()
    }

    /// Events held now.
    pub(super) fn retained(&self) -> u64 {
        match self {
            Self::Memory(memory) => memory.retained(),
            Self::Disk(disk) => disk.retained(),
        }
    }
}
