//! What a poll asks for and what it answers.

use crate::config::MAX_LIMIT;
use crate::error::{ConsumerError, JsonError};
use crate::filter::{Filter, MAX_FILTER_DEPTH};
use crate::model::StoredEvent;
use serde::de::Unexpected;
use serde::Deserialize;
use std::time::Duration;

/// The deepest nesting of arrays and objects serde_json reads (a 128th level is over its
/// recursion limit), in a request as in a payload.
pub const JSON_DEPTH_LIMIT: usize = 127;

/// How deep arrays and objects nest in JSON text (strings skipped); 0 for a scalar. Counts
/// brackets only, so it is meaningful for text that failed to parse too.
pub(crate) fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in text.bytes() {
        match (in_string, byte) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') => in_string = false,
            (true, _) => {}
            (false, b'"') => in_string = true,
            (false, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Parses `text` whole, with the key path of the value an error is about.
fn parse_tracking_path<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, (serde_json::Error, String)> {
    let mut parser = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut parser).map_err(|e| {
        let path = e.path().to_string();
        (e.into_inner(), path)
    })?;
    parser.end().map_err(|e| (e, String::new()))?;
    Ok(value)
}

/// Default page size of a JSON request that gives no `limit`.
pub const DEFAULT_LIMIT: usize = 100;

/// What to poll.
///
/// # Examples
/// ```
/// use purple_rain::{ConsumeRequest, Filter, Ordering};
/// let request = ConsumeRequest::new(100)
///     .filter(Filter::eq("kind", "click").unwrap())
///     .ordering(Ordering::Timestamp)
///     .wait(std::time::Duration::from_millis(500));
/// assert_eq!(request.limit, 100);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConsumeRequest {
    /// Most events to return.
    pub limit: usize,
    /// Cursor of a previous response; `None` reads from the oldest retained event.
    pub from_id: Option<String>,
    /// Only events matching this filter.
    pub filter: Option<Filter>,
    /// Order of the returned events.
    pub ordering: Ordering,
    /// Only these shards; `None` means every shard that exists or still holds data.
    pub shards: Option<Vec<u16>>,
    /// With nothing to return, wait up to this long for new events.
    pub wait: Option<Duration>,
}

impl ConsumeRequest {
    /// A request for up to `limit` events from the start.
    pub fn new(limit: usize) -> Self {
        Self { limit, ..Self::default() }
    }
    /// Resume from a response's cursor.
    pub fn from(mut self, cursor: impl Into<String>) -> Self {
        self.from_id = Some(cursor.into());
        self
    }
    /// Only matching events.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }
    /// Result order.
    pub fn ordering(mut self, ordering: Ordering) -> Self {
        self.ordering = ordering;
        self
    }
    /// Only these shards.
    pub fn shards(mut self, shards: Vec<u16>) -> Self {
        self.shards = Some(shards);
        self
    }
    /// Long poll: wait up to `wait` for events when there are none.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Parses the JSON shape `{"limit", "from", "filter", "ordering", "shards", "wait_ms"}`;
    /// empty text or `null` gives the defaults. Unknown keys are errors.
    pub fn from_json(text: &str) -> Result<Self, ConsumerError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            limit: Option<usize>,
            from: Option<String>,
            filter: Option<serde_json::Value>,
            ordering: Option<Ordering>,
            shards: Option<Vec<u16>>,
            wait_ms: Option<u64>,
        }
        let text = text.trim();
        if text.is_empty() || text == "null" {
            return Ok(Self::new(DEFAULT_LIMIT));
        }
        if text.starts_with('[') {
            // serde reads a struct from an array too, field by field in order: `[5]` would be
            // `{"limit":5}`. A request is an object.
            let error = <serde_json::Error as serde::de::Error>::invalid_type(Unexpected::Seq, &"a JSON object");
            return Err(ConsumerError::Json(error.into()));
        }
        let wire: Wire = parse_tracking_path(text).map_err(|(e, path)| {
            let depth = nesting_depth(text);
            if e.is_syntax() && depth > JSON_DEPTH_LIMIT {
                // Only a filter nests (a request's other values are flat): say so, briefly,
                // rather than with serde's error and a key path hundreds of levels long.
                ConsumerError::InvalidFilter(format!(
                    "filter nesting is deeper than JSON text may nest ({depth} levels of arrays and objects, at most \
                     {JSON_DEPTH_LIMIT}; a filter nests at most {MAX_FILTER_DEPTH} filter levels)"
                ))
            } else {
                ConsumerError::Json(JsonError::at(e, path))
            }
        })?;
        if let Some(limit) = wire.limit.filter(|&limit| limit > MAX_LIMIT) {
            return Err(ConsumerError::InvalidRequest(format!(
                "`limit`: {limit} is larger than the largest page, {MAX_LIMIT}"
            )));
        }
        let filter = match wire.filter {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(Filter::from_json(&value).map_err(|e| ConsumerError::InvalidFilter(e.to_string()))?),
        };
        Ok(Self {
            limit: wire.limit.unwrap_or(DEFAULT_LIMIT),
            from_id: wire.from.filter(|c| !c.is_empty()),
            filter,
            ordering: wire.ordering.unwrap_or_default(),
            shards: wire.shards,
            wait: wire.wait_ms.filter(|&ms| ms > 0).map(Duration::from_millis),
        })
    }
}

/// A page of events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumeResponse {
    /// The events, in the requested order.
    pub events: Vec<StoredEvent>,
    /// Pass back with `ConsumeRequest::from` to continue after these events.
    pub cursor: String,
    /// Some selected shard holds events past `cursor` that were not examined yet.
    pub has_more: bool,
    /// Events the cursor had not reached that were trimmed by retention before this poll:
    /// they can no longer be read. Zero unless the consumer fell behind.
    pub missed: u64,
}

/// Result order of a poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Each shard's events in sequence order (the default).
    #[default]
    Sequence,
    /// Merged across shards by `(timestamp_ns, shard, sequence)`.
    Timestamp,
}
