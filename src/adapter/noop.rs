//! The default adapter: accepts and discards.

use super::Adapter;
use crate::error::AdapterError;
use crate::model::Batch;
use async_trait::async_trait;

/// Accepts every batch and keeps nothing; polls return no events.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopAdapter;

#[async_trait]
impl Adapter for NoopAdapter {
    fn name(&self) -> &str {
        "noop"
    }

    async fn on_batch(&self, _batch: &Batch) -> Result<(), AdapterError> {
        Ok(())
    }
}
