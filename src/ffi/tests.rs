//! Rust-side tests of the boundary itself: panics do not cross, NULLs are caught, blocking calls
//! work from inside a tokio runtime. The C suite in `tests/c/` covers the API as C sees it.

use super::bus::*;
use super::error::*;
use super::ingest::*;
use super::poll::*;
use super::stats::*;
use std::ffi::{c_char, CStr};
use std::ptr;

fn last_message() -> String {
    // SAFETY: `pr_last_error_message` returns a valid NUL-terminated string owned by the library.
    unsafe { CStr::from_ptr(pr_last_error_message()) }.to_string_lossy().into_owned()
}

fn panicking_status() -> pr_status {
    ffi_boundary! {
        if std::hint::black_box(true) {
            panic!("boom from a test");
        }
        pr_status::PR_OK
    }
}

fn panicking_pointer() -> *const c_char {
    ffi_boundary! {
        let v: Vec<u8> = Vec::new();
        // An out-of-bounds index: the kind of bug that must not abort the host.
        v[std::hint::black_box(3)] as usize as *const c_char
    }
}

fn null_checked(ptr: *const u64) -> usize {
    ffi_boundary! { *try_ref!(ptr) as usize + 1 }
}

/// A panic payload that counts its drops, and panics in its destructor when asked to.
struct CountedPayload {
    drops: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    panic_on_drop: bool,
}

impl Drop for CountedPayload {
    fn drop(&mut self) {
        self.drops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.panic_on_drop {
            panic!("the payload's destructor panics too");
        }
    }
}

fn panicking_with(payload: CountedPayload) -> pr_status {
    ffi_boundary! {
        if std::hint::black_box(true) {
            std::panic::panic_any(payload);
        }
        pr_status::PR_OK
    }
}

#[test]
fn a_caught_panic_drops_its_payload_even_one_whose_destructor_panics() {
    for panic_on_drop in [false, true] {
        let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for round in 1..=3 {
            let payload = CountedPayload { drops: drops.clone(), panic_on_drop };
            assert_eq!(panicking_with(payload), pr_status::PR_ERR_PANIC);
            assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), round, "the payload is dropped, not leaked");
            assert!(last_message().contains("unknown panic payload"), "{}", last_message());
        }
        // Only the payload (and the Arc clone it held) remain counted: no other references leaked.
        assert_eq!(std::sync::Arc::strong_count(&drops), 1);
    }
}

#[test]
fn panic_becomes_status_and_message() {
    assert_eq!(panicking_status(), pr_status::PR_ERR_PANIC);
    let message = last_message();
    assert!(message.contains("boom from a test"), "{message}");
    assert!(panicking_pointer().is_null());
    assert!(last_message().contains("index out of bounds"));
}

#[test]
fn null_arguments_are_reported_by_name() {
    assert_eq!(null_checked(ptr::null()), 0);
    assert_eq!(last_message(), "argument `ptr` is NULL");
    let value = 41u64;
    assert_eq!(null_checked(&value), 42);
    // SAFETY (all calls below): NULL pointers and valid out-pointers only.
    unsafe {
        assert_eq!(pr_bus_new(ptr::null(), ptr::null_mut()), pr_status::PR_ERR_NULL_ARGUMENT);
        assert_eq!(last_message(), "argument `out` is NULL");
        assert_eq!(pr_ingest_raw(ptr::null(), b"x".as_ptr(), 1), pr_status::PR_ERR_NULL_ARGUMENT);
        assert_eq!(last_message(), "argument `bus` is NULL");
        assert_eq!(pr_flush(ptr::null()), pr_status::PR_ERR_NULL_ARGUMENT);
        assert_eq!(pr_shutdown(ptr::null()), pr_status::PR_ERR_NULL_ARGUMENT);
        assert_eq!(pr_poll_result_len(ptr::null()), 0);
        assert!(pr_poll_result_cursor(ptr::null()).is_null());
        assert!(!pr_poll_result_has_more(ptr::null()));
        let mut stats = pr_stats::default();
        assert_eq!(pr_stats_get(ptr::null(), &mut stats), pr_status::PR_ERR_NULL_ARGUMENT);
        pr_bus_free(ptr::null_mut());
        pr_poll_result_free(ptr::null_mut());
        pr_string_free(ptr::null_mut());
    }
}

#[test]
fn unknown_status_number_has_a_name() {
    // SAFETY: the returned names are static NUL-terminated strings.
    let name = |n| unsafe { CStr::from_ptr(pr_status_name(n)) }.to_str().unwrap().to_owned();
    assert_eq!(name(5), "PR_ERR_BACKPRESSURE");
    assert_eq!(name(9999), "PR_UNKNOWN_STATUS");
    assert_eq!(name(u32::MAX), "PR_UNKNOWN_STATUS");
}

/// Blocking calls wait on a channel, not `block_on`, so they work on a thread that is already
/// inside a tokio runtime (failure mode 39) and from its worker threads.
#[test]
fn blocking_calls_work_inside_a_tokio_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        round_trip(c"{\"adapter\":{\"type\":\"memory\"},\"shards\":2}");
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        tokio::spawn(async { round_trip(c"{\"adapter\":{\"type\":\"memory\"}}") }).await.unwrap();
    });
}

fn round_trip(config: &CStr) {
    let mut bus = ptr::null_mut();
    // SAFETY (all calls below): valid strings, buffers and out-pointers; the bus is freed once.
    unsafe {
        assert_eq!(pr_bus_new(config.as_ptr(), &mut bus), pr_status::PR_OK, "{}", last_message());
        for i in 0..100 {
            let event = format!("{{\"n\":{i}}}");
            assert_eq!(pr_ingest(bus, event.as_ptr(), event.len()), pr_status::PR_OK);
        }
        assert_eq!(pr_flush(bus), pr_status::PR_OK);
        let mut result = ptr::null_mut();
        assert_eq!(pr_poll(bus, c"{\"limit\":1000}".as_ptr(), &mut result), pr_status::PR_OK);
        assert_eq!(pr_poll_result_len(result), 100);
        let mut view = std::mem::MaybeUninit::<pr_event_view>::uninit();
        assert_eq!(pr_poll_result_event(result, 0, view.as_mut_ptr()), pr_status::PR_OK);
        let view = view.assume_init();
        assert!(view.payload_len > 0 && !view.id.is_null());
        assert_eq!(pr_poll_result_event(result, 100, &mut { view }), pr_status::PR_ERR_INVALID_ARGUMENT);
        pr_poll_result_free(result);
        assert_eq!(pr_shutdown(bus), pr_status::PR_OK);
        assert_eq!(pr_ingest_raw(bus, b"1".as_ptr(), 1), pr_status::PR_ERR_SHUTTING_DOWN);
        pr_bus_free(bus);
    }
}

#[test]
fn batch_length_overflow_is_invalid_argument_not_buffer_too_small() {
    let mut bus = ptr::null_mut();
    let mut accepted = 7usize;
    // SAFETY: the huge counts are rejected before any pointer is read.
    unsafe {
        assert_eq!(pr_bus_new(ptr::null(), &mut bus), pr_status::PR_OK);
        let event = b"x".as_ptr();
        let len = 1usize;
        let status = pr_ingest_raw_batch(bus, &event, &len, usize::MAX, &mut accepted);
        assert_eq!(status, pr_status::PR_ERR_INVALID_ARGUMENT);
        assert_eq!(accepted, 0);
        assert!(last_message().contains("overflows"), "{}", last_message());
        let ends = 1u32;
        let status = pr_ingest_raw_packed(bus, event, 1, &ends, usize::MAX / 2, &mut accepted);
        assert_eq!(status, pr_status::PR_ERR_INVALID_ARGUMENT);
        let id = 0u16;
        assert_eq!(pr_remove_shards(bus, &id, usize::MAX), pr_status::PR_ERR_INVALID_ARGUMENT);
        let lens = [usize::MAX / 2 + 1, usize::MAX / 2 + 1];
        let events = [event, event];
        let status = pr_ingest_raw_batch(bus, events.as_ptr(), lens.as_ptr(), 2, &mut accepted);
        assert_eq!(status, pr_status::PR_ERR_INVALID_ARGUMENT);
        pr_bus_free(bus);
    }
}

#[test]
fn version_constants_match_the_crate() {
    assert_eq!(super::PR_MAX_SHARDS, usize::from(crate::config::MAX_SHARDS));
    // SAFETY: static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(pr_version()) }.to_str().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    assert_eq!(pr_abi_version(), super::PR_ABI_VERSION);
}

/// Batch events are copied into shared chunks: payloads of every size (empty, bigger than a
/// chunk, straddling a chunk's end) come back byte for byte, in order.
#[test]
fn chunked_batch_copies_are_exact() {
    let sizes = [0usize, 5, 20_000, 3, 16_384, 16_385, 1, 9_000, 9_000, 0, 70_000];
    let events: Vec<Vec<u8>> =
        sizes.iter().enumerate().map(|(i, &n)| (0..n).map(|k| (k * 31 + i * 7) as u8).collect()).collect();
    let mut data = Vec::new();
    let mut ends = Vec::new();
    for e in &events {
        data.extend_from_slice(e);
        ends.push(data.len() as u32);
    }
    for packed in [true, false] {
        let mut bus = ptr::null_mut();
        let mut accepted = 0usize;
        let ptrs: Vec<*const u8> = events.iter().map(|e| e.as_ptr()).collect();
        // SAFETY (all calls below): buffers outlive the calls and match their lengths.
        unsafe {
            let config = c"{\"shards\":1,\"adapter\":{\"type\":\"memory\"}}";
            assert_eq!(pr_bus_new(config.as_ptr(), &mut bus), pr_status::PR_OK);
            let status = if packed {
                pr_ingest_raw_packed(bus, data.as_ptr(), data.len(), ends.as_ptr(), ends.len(), &mut accepted)
            } else {
                pr_ingest_raw_batch(bus, ptrs.as_ptr(), sizes.as_ptr(), sizes.len(), &mut accepted)
            };
            assert_eq!(status, pr_status::PR_OK, "{}", last_message());
            assert_eq!(accepted, sizes.len());
            assert_eq!(pr_flush(bus), pr_status::PR_OK);
            let mut result = ptr::null_mut();
            assert_eq!(pr_poll(bus, c"{\"limit\":100}".as_ptr(), &mut result), pr_status::PR_OK);
            assert_eq!(pr_poll_result_len(result), sizes.len());
            for (i, expected) in events.iter().enumerate() {
                let mut view = std::mem::MaybeUninit::<pr_event_view>::uninit();
                assert_eq!(pr_poll_result_event(result, i, view.as_mut_ptr()), pr_status::PR_OK);
                let view = view.assume_init();
                let payload = if view.payload_len == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(view.payload, view.payload_len)
                };
                assert_eq!(payload, &expected[..], "event {i} (packed: {packed})");
            }
            pr_poll_result_free(result);
            pr_bus_free(bus);
        }
    }
}

#[test]
fn poll_results_hand_their_id_strings_to_the_next_poll() {
    let mut bus = ptr::null_mut();
    // SAFETY (all calls below): valid strings, views and out-pointers; each result and the bus
    // are freed once.
    unsafe {
        assert_eq!(
            pr_bus_new(c"{\"shards\":1,\"adapter\":{\"type\":\"memory\"}}".as_ptr(), &mut bus),
            pr_status::PR_OK
        );
        for i in 0..300 {
            let event = format!("{{\"n\":{i}}}");
            assert_eq!(pr_ingest(bus, event.as_ptr(), event.len()), pr_status::PR_OK);
        }
        assert_eq!(pr_flush(bus), pr_status::PR_OK);
        let id_of = |result, index| {
            let mut view = std::mem::MaybeUninit::<pr_event_view>::uninit();
            assert_eq!(pr_poll_result_event(result, index, view.as_mut_ptr()), pr_status::PR_OK);
            CStr::from_ptr(view.assume_init().id).to_str().unwrap().to_owned()
        };
        let mut first = ptr::null_mut();
        assert_eq!(pr_poll(bus, c"{\"limit\":100}".as_ptr(), &mut first), pr_status::PR_OK);
        assert_eq!((*bus).ids.len(), 100, "the first page's ids wait in the pool");
        let cursor = CStr::from_ptr(pr_poll_result_cursor(first)).to_str().unwrap().to_owned();
        let request = std::ffi::CString::new(format!("{{\"limit\":150,\"from\":\"{cursor}\"}}")).unwrap();
        let mut second = ptr::null_mut();
        assert_eq!(pr_poll(bus, request.as_ptr(), &mut second), pr_status::PR_OK);
        assert_eq!((*bus).ids.len(), 150, "100 reused and handed back, 50 new");
        // Both results stay intact: their ids live in their own blocks.
        assert_eq!(id_of(first, 99), "0-99");
        assert_eq!(id_of(second, 0), "0-100");
        assert_eq!(id_of(second, 149), "0-249");
        pr_poll_result_free(first);
        pr_poll_result_free(second);
        pr_bus_free(bus);
    }
}

#[test]
fn config_errors_name_the_full_key_path_and_byte() {
    for (config, expected) in [
        (c"{\"batch\":{\"max_events\":\"x\"}}", "key `batch.max_events`, byte 25"),
        (c"{\"adapter\":{\"type\":\"memory\",\"max_events_per_shard\":-5}}", "key `adapter.max_events_per_shard`"),
    ] {
        let mut bus = ptr::null_mut();
        // SAFETY: a valid NUL-terminated string and a valid out-pointer.
        let status = unsafe { pr_bus_new(config.as_ptr(), &mut bus) };
        assert_eq!(status, pr_status::PR_ERR_CONFIG);
        assert!(last_message().contains(expected), "{}", last_message());
    }
}
