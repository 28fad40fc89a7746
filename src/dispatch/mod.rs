//! The dispatch path: shard workers that drain rings into batches and hand them to the adapter,
//! with retry and exact accounting.

pub(crate) mod worker;
