//! The dispatch path: shard workers that drain rings into batches and hand them to the adapter,
//! with retry, exact accounting and dedup ids.

mod batch;
pub(crate) mod dedup;
pub(crate) mod worker;

pub use batch::{Batch, BatchEntry};
pub use dedup::ProducerIdentity;
