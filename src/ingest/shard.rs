//! One shard: its ring, the wake-up handshake with its worker, and back-pressure.
//!
//! Waking the worker costs producers one load of `worker_idle` per push; only a push that finds
//! the worker asleep pays for a notification. The handshake is Dekker's: the worker stores
//! `idle = true` and then looks at the ring, a producer pushes and then looks at `idle`, both
//! sequentially consistent, so at least one of them sees the other and no wake-up is lost.

use super::counters::ShardCounters;
use super::ring::{PushError, Ring};
use crate::config::BackpressureMode;
use crate::model::RawEvent;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use tokio::sync::{oneshot, Notify};

/// Ring checks a worker makes before parking (a few microseconds).
const SPIN_BEFORE_PARK: u32 = 2_000;

/// Why a shard did not take an event.
#[derive(Debug)]
pub(crate) enum ShardPushError {
    /// Full and the mode is `DropNewest`.
    Full,
    /// The shard is closed (removed or shutting down); the event is handed back for rerouting.
    Closed(RawEvent),
}

/// A flush waiting for the worker to pass a ring position.
struct Barrier {
    position: u64,
    done: oneshot::Sender<()>,
}

pub(crate) struct Shard {
    pub(crate) id: u16,
    pub(crate) ring: Ring<RawEvent>,
    pub(crate) counters: ShardCounters,
    mode: BackpressureMode,
    worker_idle: CachePadded<AtomicBool>,
    wake: Notify,
    blocked: AtomicUsize,
    room: (Mutex<()>, Condvar),
    barriers: Mutex<BarrierState>,
}

#[derive(Default)]
struct BarrierState {
    waiting: Vec<Barrier>,
    worker_gone: bool,
}

impl Shard {
    pub(crate) fn new(id: u16, capacity: usize, mode: BackpressureMode) -> Self {
        Self {
            id,
            ring: Ring::new(capacity),
            counters: ShardCounters::default(),
            mode,
            worker_idle: CachePadded::new(AtomicBool::new(false)),
            wake: Notify::new(),
            blocked: AtomicUsize::new(0),
            room: (Mutex::new(()), Condvar::new()),
            barriers: Mutex::new(BarrierState::default()),
        }
    }

    /// Pushes according to the back-pressure mode.
    #[inline]
    pub(crate) fn push(&self, event: RawEvent) -> Result<(), ShardPushError> {
        match self.ring.push(event) {
            Ok(()) => {
                self.wake_worker();
                Ok(())
            }
            Err(PushError::Closed(event)) => Err(ShardPushError::Closed(event)),
            Err(PushError::Full(event)) => self.push_full(event),
        }
    }

    /// Like [`push`](Self::push), but leaves waking the worker to the caller, who calls
    /// [`wake`](Self::wake) once after a batch. The handshake still holds: the caller's `wake`
    /// looks at `idle` after its last push. Full rings behave as in `push` (they wake).
    #[inline]
    pub(crate) fn push_quiet(&self, event: RawEvent) -> Result<(), ShardPushError> {
        match self.ring.push(event) {
            Ok(()) => Ok(()),
            Err(PushError::Closed(event)) => Err(ShardPushError::Closed(event)),
            Err(PushError::Full(event)) => self.push_full(event),
        }
    }

    /// Wakes the worker if it sleeps; the end of a [`push_quiet`](Self::push_quiet) batch.
    #[inline]
    pub(crate) fn wake(&self) {
        self.wake_worker();
    }

    #[cold]
    fn push_full(&self, mut event: RawEvent) -> Result<(), ShardPushError> {
        match self.mode {
            BackpressureMode::DropNewest => {
                self.counters.rejected_backpressure.fetch_add(1, Ordering::Relaxed);
                Err(ShardPushError::Full)
            }
            BackpressureMode::DropOldest => loop {
                if self.ring.pop_one().is_ok() {
                    self.counters.dropped_evicted.fetch_add(1, Ordering::AcqRel);
                }
                match self.ring.push(event) {
                    Ok(()) => {
                        self.wake_worker();
                        return Ok(());
                    }
                    Err(PushError::Closed(back)) => return Err(ShardPushError::Closed(back)),
                    Err(PushError::Full(back)) => event = back,
                }
            },
            BackpressureMode::Block => self.push_blocking(event),
        }
    }

    /// Parks until the worker frees a slot or the ring closes. On a library runtime thread (a
    /// producer inside an adapter or a task of ours) the thread is first handed over with
    /// `block_in_place`: otherwise the shard worker this producer just woke may sit in this
    /// thread's queue, unable to run and make room, and both would wait forever.
    fn push_blocking(&self, event: RawEvent) -> Result<(), ShardPushError> {
        if crate::runtime::on_library_thread() {
            tokio::task::block_in_place(|| self.wait_for_room(event))
        } else {
            self.wait_for_room(event)
        }
    }

    /// The waiter count is raised before the retry under the lock, and the worker checks it
    /// after freeing slots (both SeqCst), so a freed slot is either seen by the retry or
    /// followed by a notification.
    fn wait_for_room(&self, mut event: RawEvent) -> Result<(), ShardPushError> {
        self.counters.blocked_waits.fetch_add(1, Ordering::Relaxed);
        self.blocked.fetch_add(1, Ordering::SeqCst);
        let (lock, room) = &self.room;
        let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let result = loop {
            match self.ring.push(event) {
                Ok(()) => break Ok(()),
                Err(PushError::Closed(back)) => break Err(ShardPushError::Closed(back)),
                Err(PushError::Full(back)) => {
                    event = back;
                    // Make sure a sleeping worker drains: the ring can only be full with it awake.
                    self.wake_worker();
                    guard = room.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
            }
        };
        drop(guard);
        self.blocked.fetch_sub(1, Ordering::SeqCst);
        if result.is_ok() {
            self.wake_worker();
        }
        result
    }

    /// Called by the worker after it took events: wakes producers parked in `Block` mode.
    pub(crate) fn release_blocked_producers(&self) {
        fence(Ordering::SeqCst);
        if self.blocked.load(Ordering::SeqCst) > 0 {
            let (lock, room) = &self.room;
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            room.notify_all();
        }
    }

    #[inline]
    fn wake_worker(&self) {
        if self.worker_idle.load(Ordering::SeqCst) {
            self.worker_idle.store(false, Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    /// Worker side: sleeps until a producer, a flush or `close` wakes it. Returns at once when
    /// there is already something to do.
    ///
    /// Before parking it watches the ring for a few microseconds: under steady load the next
    /// event almost always arrives within that window, and catching it here spares the producer
    /// the cost of a wake-up (which would otherwise be paid on nearly every push once the worker
    /// keeps up). The spin is bounded; an idle bus parks at once after it.
    pub(crate) async fn sleep_until_work(&self) {
        for _ in 0..SPIN_BEFORE_PARK {
            if self.ring.len() > 0 {
                return;
            }
            std::hint::spin_loop();
        }
        let notified = self.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        self.worker_idle.store(true, Ordering::SeqCst);
        if self.ring.len() == 0 && !self.ring.is_closed() && !self.has_barriers() {
            notified.await;
        }
        self.worker_idle.store(false, Ordering::Relaxed);
    }

    /// Closes the ring: later pushes fail with `Closed`, parked producers and the worker wake.
    pub(crate) fn close(&self) {
        self.ring.close();
        self.wake.notify_one();
        let (lock, room) = &self.room;
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        room.notify_all();
    }

    /// Resolves once the worker has handed every event accepted so far to the adapter (or
    /// counted it dropped).
    pub(crate) fn barrier(&self) -> oneshot::Receiver<()> {
        let (done, rx) = oneshot::channel();
        let position = self.ring.accepted();
        let mut state = self.barriers.lock().unwrap_or_else(|e| e.into_inner());
        if state.worker_gone || self.ring.taken() >= position && self.worker_idle.load(Ordering::SeqCst) {
            let _ = done.send(());
        } else {
            state.waiting.push(Barrier { position, done });
            drop(state);
            self.wake.notify_one();
        }
        rx
    }

    fn has_barriers(&self) -> bool {
        self.barriers.lock().map(|s| !s.waiting.is_empty()).unwrap_or(false)
    }

    /// Worker side, between batches (nothing in flight): releases flushes it has passed.
    pub(crate) fn release_barriers(&self) {
        let taken = self.ring.taken();
        let mut state = self.barriers.lock().unwrap_or_else(|e| e.into_inner());
        if state.waiting.is_empty() {
            return;
        }
        let (passed, waiting): (Vec<_>, Vec<_>) = state.waiting.drain(..).partition(|b| b.position <= taken);
        state.waiting = waiting;
        drop(state);
        for barrier in passed {
            let _ = barrier.done.send(());
        }
    }

    /// Worker side, on exit: everything is drained, so every flush is released, now and later.
    pub(crate) fn worker_exited(&self) {
        let mut state = self.barriers.lock().unwrap_or_else(|e| e.into_inner());
        state.worker_gone = true;
        for barrier in state.waiting.drain(..) {
            let _ = barrier.done.send(());
        }
    }
}
