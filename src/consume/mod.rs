//! The consume path: callback-free `poll` with cursors, filters and cross-shard ordering.
//!
//! A poll reads each selected shard through the adapter from the cursor's position, filters,
//! merges (by shard sequence, or by timestamp across shards) and returns the page with a new
//! cursor that points just past everything it examined. Passing that cursor back never repeats
//! and never skips an event.

pub mod cursor;
pub(crate) mod poll;
mod request;

pub use cursor::{Cursor, CursorError};
pub(crate) use request::nesting_depth;
pub use request::{ConsumeRequest, ConsumeResponse, Ordering, DEFAULT_LIMIT, JSON_DEPTH_LIMIT};
