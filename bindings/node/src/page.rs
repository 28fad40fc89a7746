//! Values that cross to JavaScript in bulk: poll pages (packed into a few typed arrays so a page
//! of 1000 events costs a handful of napi calls, not thousands), stats and scaling advice.

use crate::errors::Failure;
use napi::bindgen_prelude::{BigUint64Array, Env, JsObjectValue, Object, Uint16Array, Uint32Array};
use napi::JsValue;
use napi_derive::napi;
use purple_rain::error::ErrorKind;
use purple_rain::{ConsumeResponse, EventBus, IdPool};

/// Checks packed-ingest offsets: non-decreasing and within `len`. Returns the bytes used.
pub(crate) fn check_ends(ends: &[u32], len: usize) -> Result<usize, String> {
    let mut previous = 0u32;
    for (index, &end) in ends.iter().enumerate() {
        if end < previous {
            return Err(format!("ends[{index}] = {end} is less than ends[{}] = {previous}", index.saturating_sub(1)));
        }
        previous = end;
    }
    if previous as usize > len {
        return Err(format!("ends reach {previous} but data has only {len} bytes"));
    }
    Ok(previous as usize)
}

/// A JS value made on this thread during the current callback, handed back as is.
pub(crate) struct RawValue(pub(crate) napi::sys::napi_value);

impl napi::bindgen_prelude::ToNapiValue for RawValue {
    unsafe fn to_napi_value(_env: napi::sys::napi_env, value: Self) -> napi::Result<napi::sys::napi_value> {
        Ok(value.0)
    }
}

/// Separator of event ids in [`PackedPage::ids`]; ids that contain it are sent as JSON.
const ID_SEPARATOR: char = '\n';

/// A poll response taken apart off the JS thread, column by column. The payloads stay shared
/// `Bytes` until [`PackedPage::into_js`] copies them, on the JS thread, into one Buffer that
/// V8 allocates and frees on that same thread (a Buffer made from a Vec allocated on a runtime
/// thread and freed by the GC thread kept the allocator returning pages to the kernel and
/// zeroing new ones: measured, the biggest cost of a poll).
pub(crate) struct PackedPage {
    payloads: Vec<bytes::Bytes>,
    ends: Vec<u32>,
    shards: Vec<u16>,
    sequences: Vec<u64>,
    timestamps: Vec<u64>,
    ids: String,
    ids_json: bool,
    cursor: String,
    has_more: bool,
    missed: u64,
}

impl PackedPage {
    /// Packs `page`; its id strings go to `pool` for the next poll to write into.
    pub(crate) fn pack(page: ConsumeResponse, pool: &IdPool) -> Result<Self, Failure> {
        let n = page.events.len();
        let ids_json = page.events.iter().any(|e| e.id.contains(ID_SEPARATOR));
        let mut packed = Self {
            payloads: Vec::with_capacity(n),
            ends: Vec::with_capacity(n),
            shards: Vec::with_capacity(n),
            sequences: Vec::with_capacity(n),
            timestamps: Vec::with_capacity(n),
            ids: String::with_capacity(n * 8),
            ids_json,
            cursor: page.cursor,
            has_more: page.has_more,
            missed: page.missed,
        };
        if ids_json {
            let ids: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
            packed.ids =
                serde_json::to_string(&ids).map_err(|e| Failure::new(ErrorKind::InvalidRequest, e.to_string()))?;
        }
        let mut total = 0usize;
        let mut spent_ids = Vec::with_capacity(n);
        for (index, event) in page.events.into_iter().enumerate() {
            total += event.payload.len();
            let end = u32::try_from(total).map_err(|_| {
                Failure::new(
                    ErrorKind::InvalidRequest,
                    "a page of 4 GiB or more of payload does not fit one Buffer; lower `limit`",
                )
            })?;
            packed.ends.push(end);
            packed.shards.push(event.shard);
            packed.sequences.push(event.sequence);
            packed.timestamps.push(event.timestamp_ns);
            if !ids_json {
                if index > 0 {
                    packed.ids.push(ID_SEPARATOR);
                }
                packed.ids.push_str(&event.id);
            }
            packed.payloads.push(event.payload);
            spent_ids.push(event.id);
        }
        pool.recycle_ids(spent_ids);
        Ok(packed)
    }

    fn total_len(&self) -> usize {
        self.ends.last().map_or(0, |&end| end as usize)
    }

    /// Builds `{count, data, ends, shards, sequences, timestamps, ids, idsJson, cursor, hasMore,
    /// missed}`; `index.js` turns it into `{events, cursor, hasMore, missed}`. JS thread only.
    pub(crate) fn into_js(self, env: &Env) -> napi::Result<RawValue> {
        let data = self.copy_payloads(env)?;
        let mut page = Object::new(env)?;
        page.set_named_property("count", self.ends.len() as u32)?;
        page.set_named_property("data", data)?;
        page.set_named_property("ends", Uint32Array::new(self.ends))?;
        page.set_named_property("shards", Uint16Array::new(self.shards))?;
        page.set_named_property("sequences", BigUint64Array::new(self.sequences))?;
        page.set_named_property("timestamps", BigUint64Array::new(self.timestamps))?;
        page.set_named_property("ids", self.ids)?;
        page.set_named_property("idsJson", self.ids_json)?;
        page.set_named_property("cursor", self.cursor)?;
        page.set_named_property("hasMore", self.has_more)?;
        page.set_named_property("missed", self.missed as f64)?;
        Ok(RawValue(page.raw()))
    }

    /// One Buffer holding every payload back to back.
    fn copy_payloads(&self, env: &Env) -> napi::Result<RawValue> {
        let total = self.total_len();
        let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
        let mut buffer = std::ptr::null_mut();
        // SAFETY: live env on its JS thread; out-pointers are locals.
        let status = unsafe { napi::sys::napi_create_buffer(env.raw(), total, &mut data, &mut buffer) };
        if status != napi::sys::Status::napi_ok || (total > 0 && data.is_null()) {
            return Err(napi::Error::from_reason(format!("cannot allocate a {total}-byte Buffer")));
        }
        let mut offset = 0usize;
        for payload in &self.payloads {
            // SAFETY: `data` has `total` writable bytes, the sum of the payload lengths, so
            // `offset + payload.len() <= total`; source and destination do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(payload.as_ptr(), data.cast::<u8>().add(offset), payload.len());
            }
            offset += payload.len();
        }
        Ok(RawValue(buffer))
    }
}

/// What a completed `flush()` resolves to.
#[napi(object)]
pub struct FlushReport {
    /// Events dropped since the previous flush returned (each drop is reported once).
    pub dropped: f64,
    /// `dropped > 0`.
    pub lossy: bool,
}

/// What `suggestScaling()` resolves to.
#[napi(object)]
pub struct ScalingAdvice {
    /// `"scaleUp"`, `"scaleDown"` or `"none"`.
    pub action: String,
    /// Shards to add (scaleUp) or remove (scaleDown).
    pub count: u32,
    /// The shards to remove (scaleDown), else empty.
    pub shards: Vec<u32>,
}

/// Bus counters. Counts are JS numbers: exact below 2^53, which a counter does not reach in
/// practice (about 100 days at a billion events per second).
#[napi(object)]
pub struct Stats {
    pub events_ingested: f64,
    pub events_dropped: f64,
    pub batches_dispatched: f64,
    pub events_dispatched: f64,
    pub shutdown_was_lossy: bool,
    pub dropped_evicted: f64,
    pub dropped_adapter_fatal: f64,
    pub dropped_retry_exhausted: f64,
    pub dropped_lost: f64,
    pub rejected_backpressure: f64,
    pub blocked_waits: f64,
    pub retries: f64,
    pub events_trimmed: f64,
    pub last_adapter_error: Option<String>,
    pub shards: Vec<ShardStats>,
}

/// Figures of one shard.
#[napi(object)]
pub struct ShardStats {
    pub id: u32,
    pub events_ingested: f64,
    pub events_dispatched: f64,
    pub events_dropped: f64,
    pub batches_dispatched: f64,
    pub rejected_backpressure: f64,
    pub ring_len: f64,
    pub ring_capacity: f64,
    pub retired: bool,
}

impl Stats {
    pub(crate) fn read(bus: &EventBus) -> Self {
        let stats = bus.stats();
        let s = stats.snapshot();
        let n = |v: u64| v as f64;
        Self {
            events_ingested: n(s.events_ingested),
            events_dropped: n(s.events_dropped),
            batches_dispatched: n(s.batches_dispatched),
            events_dispatched: n(s.events_dispatched),
            shutdown_was_lossy: s.shutdown_was_lossy,
            dropped_evicted: n(s.dropped_evicted),
            dropped_adapter_fatal: n(s.dropped_adapter_fatal),
            dropped_retry_exhausted: n(s.dropped_retry_exhausted),
            dropped_lost: n(s.dropped_lost),
            rejected_backpressure: n(s.rejected_backpressure),
            blocked_waits: n(s.blocked_waits),
            retries: n(s.retries),
            events_trimmed: n(s.events_trimmed),
            last_adapter_error: stats.last_adapter_error(),
            shards: stats
                .shards()
                .into_iter()
                .map(|sh| ShardStats {
                    id: u32::from(sh.id),
                    events_ingested: n(sh.events_ingested),
                    events_dispatched: n(sh.events_dispatched),
                    events_dropped: n(sh.events_dropped),
                    batches_dispatched: n(sh.batches_dispatched),
                    rejected_backpressure: n(sh.rejected_backpressure),
                    ring_len: sh.ring_len as f64,
                    ring_capacity: sh.ring_capacity as f64,
                    retired: sh.retired,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use purple_rain::StoredEvent;

    #[test]
    fn ends_must_be_non_decreasing_and_in_bounds() {
        assert_eq!(check_ends(&[], 0), Ok(0));
        assert_eq!(check_ends(&[3, 3, 10], 10), Ok(10));
        assert_eq!(check_ends(&[3, 7], 10), Ok(7));
        assert!(check_ends(&[5, 4], 10).unwrap_err().contains("ends[1] = 4"));
        assert!(check_ends(&[5, 11], 10).unwrap_err().contains("only 10 bytes"));
    }

    fn event(id: &str, shard: u16, sequence: u64, payload: &'static [u8]) -> StoredEvent {
        StoredEvent { id: id.into(), shard, sequence, timestamp_ns: u64::MAX - sequence, payload: payload.into() }
    }

    #[test]
    fn pack_keeps_columns_aligned() {
        let page = ConsumeResponse {
            events: vec![event("0-1", 0, 1, b"ab"), event("1-9", 1, 9, b""), event("0-2", 0, 2, b"xyz")],
            cursor: "c".into(),
            has_more: true,
            missed: 4,
        };
        let pool = IdPool::new();
        let packed = PackedPage::pack(page, &pool).unwrap();
        assert_eq!(pool.len(), 3, "the page's id strings wait for the next poll");
        assert_eq!(packed.payloads.concat(), b"abxyz");
        assert_eq!(packed.total_len(), 5);
        assert_eq!(packed.ends, [2, 2, 5]);
        assert_eq!(packed.shards, [0, 1, 0]);
        assert_eq!(packed.sequences, [1, 9, 2]);
        assert_eq!(packed.timestamps, [u64::MAX - 1, u64::MAX - 9, u64::MAX - 2]);
        assert_eq!(packed.ids, "0-1\n1-9\n0-2");
        assert!(!packed.ids_json);
        assert!(packed.has_more);
        assert_eq!(packed.missed, 4);
    }

    #[test]
    fn ids_with_the_separator_go_as_json() {
        let page = ConsumeResponse { events: vec![event("a\nb", 0, 0, b"x")], ..Default::default() };
        let packed = PackedPage::pack(page, &IdPool::new()).unwrap();
        assert!(packed.ids_json);
        assert_eq!(packed.ids, r#"["a\nb"]"#);
    }
}
