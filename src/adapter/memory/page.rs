//! Appending an event to a page without waiting on the stores that built it.
//!
//! `page.push(StoredEvent { .. })` builds the event on the stack and has LLVM move it into the
//! page with 16-byte loads. The fields were just written with 8-byte stores (the payload's by
//! `Bytes::clone`, through its vtable, into a return slot), and a load that spans two pending
//! stores cannot take its data from them: x86 cores forward a load from one store only, so it
//! waits until they reach the cache. So each field is stored straight into the page, and the
//! payload's clone is moved one word at a time: a bitwise move, as every Rust move is, that
//! needs only the size of `Bytes` to be whole words (asserted below at compile time), never its
//! private layout; Miri checks it in CI. It is kept because it measured faster than the safe
//! `push` on the path it serves (BENCHMARKS.md, "The page push against the safe form").

use crate::model::StoredEvent;
use bytes::Bytes;
use std::mem::{align_of, size_of, MaybeUninit};
use std::ptr::addr_of_mut;

/// Appends an event with an empty id and a clone of `payload`.
#[inline(always)]
pub(in crate::adapter) fn push_event(
    page: &mut Vec<StoredEvent>,
    shard: u16,
    sequence: u64,
    timestamp_ns: u64,
    payload: &Bytes,
    origin: u64,
) {
    page.reserve(1);
    let slot = page.spare_capacity_mut()[0].as_mut_ptr();
    // SAFETY: `slot` is the first spare slot of the page, valid for writes after `reserve`.
    // Every field is written before `set_len` makes the event part of the page, so a panic in
    // `Bytes::clone` (none is documented) leaves the slot outside it, never half-written in it.
    unsafe {
        clone_word_by_word(payload, addr_of_mut!((*slot).payload));
        addr_of_mut!((*slot).id).write(String::new());
        addr_of_mut!((*slot).shard).write(shard);
        addr_of_mut!((*slot).sequence).write(sequence);
        addr_of_mut!((*slot).timestamp_ns).write(timestamp_ns);
        addr_of_mut!((*slot).origin).write(origin);
        page.set_len(page.len() + 1);
    }
}

/// A `Bytes` is four pointer-sized fields; copied as such, each load takes its data from
/// exactly one store.
const WORDS: usize = size_of::<Bytes>() / size_of::<usize>();
const _: () = assert!(size_of::<Bytes>() % size_of::<usize>() == 0 && align_of::<Bytes>() >= align_of::<usize>());

/// Writes a clone of `source` to `target`.
///
/// # Safety
/// `target` must be valid for writes of a `Bytes` and aligned for one. What it held is
/// overwritten, not dropped.
#[inline(always)]
unsafe fn clone_word_by_word(source: &Bytes, target: *mut Bytes) {
    let clone = MaybeUninit::new(source.clone());
    let from = clone.as_ptr().cast::<MaybeUninit<usize>>();
    let to = target.cast::<MaybeUninit<usize>>();
    for word in 0..WORDS {
        // SAFETY: both are `WORDS` words long and word-aligned (the assertion above and the
        // caller's promise). `MaybeUninit` copies keep the pointers' provenance. The volatile
        // read keeps LLVM from merging the words back into the 16-byte loads this avoids. The
        // clone is never dropped: ownership of its reference moves to `target`.
        unsafe { to.add(word).write(from.add(word).read_volatile()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// An owner that counts how many `Bytes` still hold it.
    struct Counted(Arc<AtomicUsize>, Vec<u8>);
    impl AsRef<[u8]> for Counted {
        fn as_ref(&self) -> &[u8] {
            &self.1
        }
    }
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn pushed_events_own_one_reference_each_and_release_it() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let owned = Bytes::from_owner(Counted(dropped.clone(), b"shared owner".to_vec()));
        let payloads = [Bytes::from_static(b"static"), Bytes::from(b"from a vec".to_vec()), owned.slice(0..6)];
        let mut page = Vec::with_capacity(1); // grows while pushing
        for round in 0..3u64 {
            for (n, payload) in payloads.iter().enumerate() {
                push_event(&mut page, n as u16, round, 10 + round, payload, 7);
            }
        }
        assert_eq!(page.len(), 9);
        for (i, event) in page.iter().enumerate() {
            assert_eq!(event.id, "");
            assert_eq!(
                (event.shard, event.sequence, event.timestamp_ns),
                ((i % 3) as u16, i as u64 / 3, 10 + i as u64 / 3)
            );
            assert_eq!(event.payload, payloads[i % 3]);
            assert_eq!(event.origin, 7);
        }
        drop(payloads);
        drop(owned);
        assert_eq!(dropped.load(Ordering::SeqCst), 0, "three events still hold the owner");
        page.retain(|event| event.shard != 2 || event.sequence != 0);
        assert_eq!(dropped.load(Ordering::SeqCst), 0, "two events still hold the owner");
        page.truncate(2); // keeps a static and a vec payload
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "the owner goes with the last event holding it");
        drop(page);
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }
}
