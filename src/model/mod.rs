//! The shapes every stage shares: an event as it enters the bus, a batch as a worker hands it
//! to an adapter, an event as an adapter retained it, and the producer identity behind dedup
//! ids.
//!
//! They live below the stages (ingest, dispatch, adapters, consume) so that each stage imports
//! them from here and no stage imports another for its types.

mod batch;
mod event;
mod producer;
mod stored;

pub use batch::{Batch, BatchEntry};
pub use event::{Event, RawEvent};
pub use producer::ProducerIdentity;
pub use stored::StoredEvent;
