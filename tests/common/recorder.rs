//! A test adapter that records what it receives and injects faults.

use async_trait::async_trait;
use purple_rain::{Adapter, AdapterError, Batch};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// What a recording adapter does with each call.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    None,
    /// About every `n`th batch fails once with a transient error, then succeeds on retry.
    TransientEvery(u64),
    /// Every `n`th call fails fatally.
    FatalEvery(u64),
    /// Every call fails transiently.
    AlwaysTransient,
    /// Each call takes this long.
    Slow(Duration),
    /// Every `n`th call panics.
    PanicEvery(u64),
}

/// `(sequence, payload)` of a delivered event.
pub type Delivered = (u64, Vec<u8>);

/// Records delivered payloads per shard, with their sequences.
pub struct Recorder {
    pub fault: Fault,
    calls: AtomicU64,
    pub delivered: Mutex<HashMap<u16, Vec<Delivered>>>,
    pub flushes: AtomicUsize,
    pub shutdowns: AtomicUsize,
    pub dedup_ids: Mutex<Vec<String>>,
    failed_once: Mutex<std::collections::HashSet<(u16, u64)>>,
    /// Notified (permit stored) when `shutdown` is called.
    pub shut_down: tokio::sync::Notify,
}

impl Recorder {
    pub fn new(fault: Fault) -> Self {
        Self {
            fault,
            calls: AtomicU64::new(0),
            delivered: Mutex::new(HashMap::new()),
            flushes: AtomicUsize::new(0),
            shutdowns: AtomicUsize::new(0),
            dedup_ids: Mutex::new(Vec::new()),
            failed_once: Mutex::new(Default::default()),
            shut_down: tokio::sync::Notify::new(),
        }
    }

    pub fn delivered_count(&self) -> usize {
        self.delivered.lock().unwrap().values().map(Vec::len).sum()
    }

    /// Every delivered payload, all shards.
    pub fn payloads(&self) -> Vec<Vec<u8>> {
        self.delivered.lock().unwrap().values().flat_map(|v| v.iter().map(|(_, p)| p.clone())).collect()
    }
}

#[async_trait]
impl Adapter for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        match self.fault {
            Fault::TransientEvery(n)
                if call % n == 0
                    && self.failed_once.lock().unwrap().insert((batch.shard(), batch.first_sequence())) =>
            {
                return Err(AdapterError::Transient(format!("call {call}")))
            }
            Fault::FatalEvery(n) if call % n == 0 => return Err(AdapterError::Fatal(format!("call {call}"))),
            Fault::AlwaysTransient => return Err(AdapterError::Transient("down".into())),
            Fault::PanicEvery(n) if call % n == 0 => panic!("injected adapter panic"),
            Fault::Slow(d) => tokio::time::sleep(d).await,
            _ => {}
        }
        let mut delivered = self.delivered.lock().unwrap();
        let shard = delivered.entry(batch.shard()).or_default();
        for entry in batch.iter() {
            shard.push((entry.sequence, entry.payload().to_vec()));
        }
        let mut ids = self.dedup_ids.lock().unwrap();
        ids.extend((0..batch.len()).map(|i| batch.dedup_id(i)));
        Ok(())
    }

    async fn flush(&self) -> Result<(), AdapterError> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), AdapterError> {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
        self.shut_down.notify_one();
        Ok(())
    }
}
