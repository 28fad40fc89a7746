//! A bounded multi-producer ring buffer that can be closed, one per shard.
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue (as in crossbeam's `ArrayQueue`): every
//! slot carries a stamp saying which position may use it next, so producers and consumers agree
//! on ownership with one CAS on `tail` or `head` and no locks. Two additions make it fit a bus:
//!
//! * **Closing is part of reserving.** Bit 63 of `tail` is a closed flag. A producer reserves a
//!   slot with a CAS on the whole word, so a producer either reserves before `close()` (and the
//!   final drain will find its event) or sees the flag and fails. There is no window in which an
//!   event can be pushed after the last sweep ("stranded on shutdown").
//! * **Counting is free.** Positions are plain `u64`s that never wrap in practice, so the
//!   number of events ever accepted is `tail` itself: ingest needs no extra counter.
//!
//! The consumer side takes a whole run of ready slots with one CAS (`pop_batch`), which is what
//! lets a shard worker keep up with many producers. Producers evict through the same CAS path
//! (`pop_one`) in `DropOldest` mode, so consumers may be several threads.

use crate::sync::{fence, AtomicU64, Ordering, UnsafeCell};
use crossbeam_utils::{Backoff, CachePadded};
use std::mem::MaybeUninit;

const CLOSED: u64 = 1 << 63;

/// One cache line per slot (an event is 40 bytes, a slot 48 unpadded): a producer writing a
/// slot and the worker taking the one before it never share a line, which would bounce it
/// between their cores on every event once the worker keeps up. The 16 bytes of padding per
/// slot buy a faster ingest (BENCHMARKS.md, "Ring slots on their own cache lines").
#[repr(align(64))]
struct Slot<T> {
    /// `pos` when the slot is free for the producer of position `pos`; `pos + 1` when it holds
    /// the value of position `pos`; `pos + capacity` once that value has been taken.
    stamp: AtomicU64,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// Why a push failed; the value is handed back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError<T> {
    /// Every slot holds an unconsumed value.
    Full(T),
    /// The ring was closed; it will never accept another value.
    Closed(T),
}

/// What a pop found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PopStatus {
    /// Took values.
    Took(usize),
    /// Nothing to take: `head == tail`.
    Empty,
    /// The next slot is reserved by a producer that has not written it yet: try again shortly.
    Pending,
}

pub(crate) struct Ring<T> {
    head: CachePadded<AtomicU64>,
    tail: CachePadded<AtomicU64>,
    slots: Box<[Slot<T>]>,
    capacity: u64,
    mask: u64,
}

// SAFETY: values move between threads through the ring (so `T: Send`), and every access to a
// slot's value is made exclusive by the stamp protocol: a slot is written only by the producer
// whose CAS reserved its position and read only by the consumer whose CAS claimed it.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above; shared references only reach values through the stamp protocol.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// A ring of `capacity` slots; `capacity` must be a power of two (config validation ensures
    /// it), which makes the slot index a mask.
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two(), "ring capacity must be a power of two");
        let slots = (0..capacity as u64)
            .map(|i| Slot { stamp: AtomicU64::new(i), value: UnsafeCell::new(MaybeUninit::uninit()) })
            .collect();
        Self {
            head: CachePadded::new(AtomicU64::new(0)),
            tail: CachePadded::new(AtomicU64::new(0)),
            slots,
            capacity: capacity as u64,
            mask: capacity as u64 - 1,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity as usize
    }

    fn slot(&self, pos: u64) -> &Slot<T> {
        &self.slots[(pos & self.mask) as usize]
    }

    /// Appends `value` unless the ring is full or closed.
    pub(crate) fn push(&self, value: T) -> Result<(), PushError<T>> {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(PushError::Closed(value));
            }
            let slot = self.slot(tail);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == tail {
                match self.tail.compare_exchange_weak(tail, tail + 1, Ordering::SeqCst, Ordering::Relaxed) {
                    Ok(_) => {
                        // SAFETY: the CAS reserved position `tail`; the stamp said the slot is
                        // free for exactly that position, so no other thread touches the value
                        // until we publish it with the stamp store below.
                        slot.value.with_mut(|v| unsafe { (*v).write(value) });
                        slot.stamp.store(tail + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => {
                        tail = current;
                        crate::sync::spin(&backoff);
                    }
                }
            } else if stamp.wrapping_add(self.capacity) == tail + 1 {
                // The slot still holds the value from one lap ago: full, unless a consumer is
                // taking it right now.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head + self.capacity == tail {
                    return Err(PushError::Full(value));
                }
                crate::sync::spin(&backoff);
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another producer reserved this position and moved on; reload.
                crate::sync::snooze(&backoff);
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Moves up to `max` values, in order, into `out` with a single CAS on `head`.
    ///
    /// Returns the status and the position of the first value taken.
    pub(crate) fn pop_batch(&self, max: usize, out: &mut Vec<T>) -> (PopStatus, u64) {
        let backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // Count the run of slots that are filled for consecutive positions.
            let mut ready = 0u64;
            while (ready as usize) < max && ready < self.capacity {
                let pos = head + ready;
                if self.slot(pos).stamp.load(Ordering::Acquire) != pos + 1 {
                    break;
                }
                ready += 1;
            }
            if ready == 0 {
                let stamp = self.slot(head).stamp.load(Ordering::Acquire);
                if stamp == head {
                    fence(Ordering::SeqCst);
                    let tail = self.tail.load(Ordering::Relaxed) & !CLOSED;
                    if tail == head {
                        return (PopStatus::Empty, head);
                    }
                    if self.head.load(Ordering::Relaxed) == head {
                        // Reserved by a producer that has not written yet.
                        return (PopStatus::Pending, head);
                    }
                }
                // Another consumer moved head; reload.
                crate::sync::spin(&backoff);
                head = self.head.load(Ordering::Relaxed);
                continue;
            }
            match self.head.compare_exchange_weak(head, head + ready, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => {
                    out.reserve(ready as usize);
                    for pos in head..head + ready {
                        let slot = self.slot(pos);
                        // SAFETY: the stamp said the slot holds the value of `pos`, and our CAS
                        // claimed `pos`, so we are its only reader; the stamp store below hands
                        // the slot back to producers only after the read.
                        let value = slot.value.with_mut(|v| unsafe { (*v).assume_init_read() });
                        slot.stamp.store(pos + self.capacity, Ordering::Release);
                        out.push(value);
                    }
                    return (PopStatus::Took(ready as usize), head);
                }
                Err(current) => {
                    head = current;
                    crate::sync::spin(&backoff);
                }
            }
        }
    }

    /// Takes the oldest value, if one is ready.
    pub(crate) fn pop_one(&self) -> Result<T, PopStatus> {
        let mut one = Vec::with_capacity(1);
        match self.pop_batch(1, &mut one) {
            (PopStatus::Took(_), _) => one.pop().ok_or(PopStatus::Empty),
            (status, _) => Err(status),
        }
    }

    /// Closes the ring and returns the final tail: every position below it was reserved before
    /// the close and will be written; no position at or above it ever will be.
    pub(crate) fn close(&self) -> u64 {
        self.tail.fetch_or(CLOSED, Ordering::SeqCst) & !CLOSED
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tail.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Positions ever reserved: the number of values ever accepted.
    pub(crate) fn accepted(&self) -> u64 {
        self.tail.load(Ordering::Acquire) & !CLOSED
    }

    /// Positions ever taken by consumers.
    pub(crate) fn taken(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Values currently held (or reserved). Exact only when no one is pushing or popping.
    pub(crate) fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::SeqCst) & !CLOSED;
        let head = self.head.load(Ordering::SeqCst);
        tail.saturating_sub(head) as usize
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed) & !CLOSED;
        for pos in head..tail {
            let slot = self.slot(pos);
            if slot.stamp.load(Ordering::Relaxed) == pos + 1 {
                // SAFETY: `&mut self` means no producer or consumer is active, and the stamp
                // says the slot holds an initialised value of `pos` that nobody took.
                slot.value.with_mut(|v| unsafe { (*v).assume_init_drop() });
            }
        }
    }
}

#[cfg(all(test, not(purple_rain_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn every_slot_of_an_event_ring_has_its_own_cache_line() {
        assert_eq!(std::mem::size_of::<Slot<crate::model::RawEvent>>(), 64);
        let ring = Ring::<crate::model::RawEvent>::new(8);
        let lines: std::collections::HashSet<usize> = ring.slots.iter().map(|s| s as *const _ as usize / 64).collect();
        assert_eq!(lines.len(), 8);
    }

    #[test]
    fn fifo_until_full_then_full() {
        let ring = Ring::new(4);
        for i in 0..4 {
            ring.push(i).unwrap();
        }
        assert_eq!(ring.push(9), Err(PushError::Full(9)));
        assert_eq!(ring.pop_one(), Ok(0));
        ring.push(4).unwrap();
        let mut out = Vec::new();
        assert_eq!(ring.pop_batch(10, &mut out).0, PopStatus::Took(4));
        assert_eq!(out, vec![1, 2, 3, 4]);
        assert_eq!(ring.pop_batch(10, &mut out).0, PopStatus::Empty);
        assert_eq!(ring.accepted(), 5);
    }

    #[test]
    fn closed_ring_rejects_and_keeps_what_it_has() {
        let ring = Ring::new(4);
        ring.push(1).unwrap();
        assert_eq!(ring.close(), 1);
        assert_eq!(ring.push(2), Err(PushError::Closed(2)));
        assert_eq!(ring.pop_one(), Ok(1));
        assert_eq!(ring.pop_one(), Err(PopStatus::Empty));
    }

    #[test]
    fn drops_unconsumed_values() {
        let value = Arc::new(());
        {
            let ring = Ring::new(8);
            for _ in 0..5 {
                ring.push(value.clone()).unwrap();
            }
            ring.pop_one().unwrap();
        }
        assert_eq!(Arc::strong_count(&value), 1);
    }

    /// Many producers, one batch consumer and evicting producers: every value is seen exactly
    /// once, per-producer order holds, and nothing pushed before `close` is lost.
    #[test]
    fn mpmc_stress_with_close() {
        const PRODUCERS: u64 = 6;
        let per_producer: u64 = if cfg!(miri) { 200 } else { 50_000 };
        let ring = Arc::new(Ring::new(64));
        let accepted: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let ring = ring.clone();
                std::thread::spawn(move || {
                    let mut ok = Vec::new();
                    for i in 0..per_producer {
                        let mut v = (p << 32) | i;
                        loop {
                            match ring.push(v) {
                                Ok(()) => {
                                    ok.push(v);
                                    break;
                                }
                                Err(PushError::Full(back)) => {
                                    v = back;
                                    std::thread::yield_now();
                                }
                                Err(PushError::Closed(_)) => return ok,
                            }
                        }
                    }
                    ok
                })
            })
            .collect();
        let consumer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                loop {
                    let mut out = Vec::new();
                    match ring.pop_batch(32, &mut out).0 {
                        PopStatus::Took(_) => seen.extend(out),
                        PopStatus::Empty if ring.is_closed() => return seen,
                        _ => std::thread::yield_now(),
                    }
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        ring.close();
        let mut pushed: Vec<u64> = accepted.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let seen = consumer.join().unwrap();
        // Per-producer order.
        let mut last = vec![None; PRODUCERS as usize];
        for v in &seen {
            let p = (v >> 32) as usize;
            assert!(last[p].is_none_or(|l| l < *v), "order broken for producer {p}");
            last[p] = Some(*v);
        }
        let mut seen_sorted = seen.clone();
        seen_sorted.sort_unstable();
        pushed.sort_unstable();
        assert_eq!(seen_sorted, pushed, "every accepted value is consumed exactly once");
        assert_eq!(ring.accepted() as usize, pushed.len());
    }
}

#[cfg(all(test, purple_rain_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Two producers race a close: each push either fails with `Closed` or its value is drained.
    #[test]
    fn close_never_strands_a_value() {
        loom::model(|| {
            let ring = Arc::new(Ring::new(2));
            let producers: Vec<_> = (0..2)
                .map(|i| {
                    let ring = ring.clone();
                    thread::spawn(move || ring.push(i).is_ok())
                })
                .collect();
            let final_tail = ring.close();
            let mut drained = Vec::new();
            loop {
                match ring.pop_batch(4, &mut drained).0 {
                    PopStatus::Took(_) => {}
                    PopStatus::Pending => thread::yield_now(),
                    PopStatus::Empty => break,
                }
            }
            let ok = producers.into_iter().map(|p| p.join().unwrap()).filter(|&ok| ok).count();
            assert_eq!(ok as u64, final_tail);
            assert_eq!(drained.len(), ok);
        });
    }

    /// A producer and an evicting producer at a full ring with a consumer: no value is read
    /// twice and no slot is written while it is read.
    #[test]
    fn eviction_races_consumer() {
        loom::model(|| {
            let ring = Arc::new(Ring::new(2));
            ring.push(0).unwrap();
            ring.push(1).unwrap();
            let evictor = {
                let ring = ring.clone();
                thread::spawn(move || {
                    let evicted = ring.pop_one().ok();
                    let pushed = ring.push(2).is_ok();
                    (evicted, pushed)
                })
            };
            let mut out = Vec::new();
            ring.pop_batch(2, &mut out);
            let (evicted, pushed) = evictor.join().unwrap();
            let mut rest = Vec::new();
            ring.pop_batch(4, &mut rest);
            let mut all: Vec<_> = out.into_iter().chain(evicted).chain(rest).collect();
            all.sort_unstable();
            let mut expected = vec![0, 1];
            if pushed {
                expected.push(2);
            }
            assert_eq!(all, expected);
        });
    }
}
