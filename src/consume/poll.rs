//! Reading a page across shards: fair sequence order, a true timestamp merge, long poll.
//!
//! The cursor for a shard moves to the first event this poll examined but did not return, or
//! past everything examined when all of it was returned or rejected by the filter. So the next
//! poll starts exactly where this one stopped, whatever the filter and ordering: no match on a
//! later shard is skipped because an earlier shard filled the page (failure modes 23, 24).

use super::{ConsumeRequest, ConsumeResponse, Cursor, Ordering};
use crate::adapter::{Adapter, IdPool, ShardPage, ShardRead};
use crate::config::MAX_LIMIT;
use crate::error::{AdapterError, ConsumerError, ConsumerResult};
use crate::model::StoredEvent;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Events read from one shard and not yet placed in the response.
struct ShardBuffer {
    shard: u16,
    events: VecDeque<StoredEvent>,
    /// Next sequence to read from the adapter.
    next: u64,
    more: bool,
    /// Events per read of this shard, doubled each time it runs dry (a read never asks for more
    /// than the page has room for).
    read_size: usize,
}

impl ShardBuffer {
    /// Where the cursor stands for this shard after the response: at the first event still
    /// buffered (examined, matched, not returned), else past everything read.
    fn position(&self) -> u64 {
        self.events.front().map_or(self.next, |e| e.sequence)
    }

    fn has_more(&self) -> bool {
        !self.events.is_empty() || self.more
    }
}

/// What a poll may reuse of pages its caller is done with.
#[derive(Default)]
pub(crate) struct Recycled<'a> {
    /// Id strings, written into where the adapter supports it.
    pub ids: Option<&'a IdPool>,
    /// An emptied page whose memory holds the new one.
    pub events: Vec<StoredEvent>,
}

pub(crate) async fn poll(
    adapter: Arc<dyn Adapter>,
    request: ConsumeRequest,
    shards: Vec<u16>,
    delivered: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    recycled: Recycled<'_>,
) -> ConsumerResult<ConsumeResponse> {
    let Recycled { ids: recycled_ids, events: mut spare } = recycled;
    if request.limit > MAX_LIMIT {
        return Err(ConsumerError::InvalidRequest(format!(
            "limit {} is larger than the largest page, {MAX_LIMIT}",
            request.limit
        )));
    }
    let store = adapter.store_id();
    let mut cursor = match &request.from_id {
        Some(text) => Cursor::decode(text).map_err(|e| ConsumerError::InvalidCursor(e.to_string()))?,
        None => Cursor::start(),
    };
    if let (Some(theirs), Some(ours)) = (cursor.store(), store) {
        if theirs != ours {
            return Err(ConsumerError::InvalidCursor(format!(
                "the cursor belongs to another store ({theirs:032x}; this bus reads {ours:032x})"
            )));
        }
    }
    cursor = cursor.with_store(store);
    if request.limit == 0 {
        let cursor = request.from_id.clone().unwrap_or_else(|| cursor.encode());
        return Ok(ConsumeResponse { events: Vec::new(), cursor, has_more: false, missed: 0 });
    }
    let deadline = request.wait.map(|w| Instant::now() + w);
    let mut missed = 0;
    loop {
        // Register for wake-ups before reading, so a batch delivered during the read is not
        // missed by the wait below.
        let notified = delivered.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();

        let reader = Reader { adapter: adapter.as_ref(), request: &request, recycled_ids };
        let page = reader.read_page(&shards, &cursor, std::mem::take(&mut spare)).await?;
        missed = page.missed.saturating_add(missed);
        cursor = page.cursor;
        let Some(deadline) = deadline.filter(|d| page.events.is_empty() && !page.has_more && Instant::now() < *d)
        else {
            return Ok(ConsumeResponse {
                events: page.events,
                cursor: cursor.encode(),
                has_more: page.has_more,
                missed,
            });
        };
        // Shutdown sets the flag before it notifies, and we registered before this check, so a
        // long poll never outlives the bus.
        if stopping.load(std::sync::atomic::Ordering::Acquire) {
            return Err(ConsumerError::Adapter(AdapterError::Shutdown));
        }
        spare = page.events;
        let positions: Vec<(u16, u64)> = shards.iter().map(|&s| (s, cursor.position(s))).collect();
        tokio::select! {
            _ = notified => {}
            woke = adapter.wait_for_events(&positions, deadline.into_std()) => woke?,
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// A read failure as the poll reports it: a cursor past the end of a shard is the caller's
/// cursor at fault, not the adapter.
fn adapter_error(error: AdapterError) -> ConsumerError {
    match error {
        AdapterError::CursorAhead { .. } => ConsumerError::InvalidCursor(error.to_string()),
        error => ConsumerError::Adapter(error),
    }
}

struct Page {
    events: Vec<StoredEvent>,
    cursor: Cursor,
    has_more: bool,
    missed: u64,
}

/// What every shard read of one page shares.
struct Reader<'a> {
    adapter: &'a dyn Adapter,
    request: &'a ConsumeRequest,
    recycled_ids: Option<&'a IdPool>,
}

/// Where one shard stands after a page.
struct ShardEnd {
    shard: u16,
    /// The cursor position: the first event examined but not returned, else past everything
    /// examined.
    position: u64,
    /// Events at or past `position` existed (or were not looked at).
    more: bool,
}

impl Reader<'_> {
    /// Reads one page into `events` (emptied, its memory reused).
    async fn read_page(&self, shards: &[u16], cursor: &Cursor, mut events: Vec<StoredEvent>) -> ConsumerResult<Page> {
        let limit = self.request.limit;
        // A fair share per shard first, so one busy shard cannot starve the others.
        let share = limit.div_ceil(shards.len().max(1)).max(1);
        let mut missed = 0;
        events.clear();
        events.reserve(limit.min(4096));
        let ends = match self.request.ordering {
            Ordering::Sequence => self.read_in_sequence(shards, cursor, limit, share, &mut events, &mut missed).await?,
            Ordering::Timestamp => {
                self.merge_by_timestamp(shards, cursor, limit, share, &mut events, &mut missed).await?
            }
        };
        let mut next = cursor.clone();
        for end in &ends {
            next.advance(end.shard, end.position);
        }
        let has_more = ends.iter().any(|end| end.more);
        Ok(Page { events, cursor: next, has_more, missed })
    }

    fn shard_read(&self, shard: u16, from: u64, max_events: usize) -> ShardRead<'_> {
        ShardRead { shard, from, max_events, filter: self.request.filter.as_ref(), recycled_ids: self.recycled_ids }
    }

    /// The error for an adapter answer that breaks the read contract.
    fn broken(&self, what: String) -> ConsumerError {
        ConsumerError::Adapter(AdapterError::Fatal(format!("adapter {} {what}", self.adapter.name())))
    }

    /// Refuses an adapter answer that would move a cursor backwards, or that says more events
    /// exist while it neither returned one nor moved on: a `while has_more` consumer would ask
    /// for the same page forever.
    fn check_progress(&self, shard: u16, from: u64, end: &ShardPage, returned: usize) -> ConsumerResult<()> {
        if end.next < from {
            return Err(self.broken(format!("moved shard {shard} backwards ({from} -> {})", end.next)));
        }
        if end.more && returned == 0 && end.next == from {
            return Err(
                self.broken(format!("said shard {shard} has more at {from} but returned nothing and did not move"))
            );
        }
        Ok(())
    }

    /// Reads up to `max` matching events of `shard` from `from` into a page of their own.
    async fn read(&self, shard: u16, from: u64, max: usize) -> ConsumerResult<ShardPage> {
        let page = self.adapter.read_shard(self.shard_read(shard, from, max)).await.map_err(adapter_error)?;
        self.check_progress(shard, from, &page, page.events.len())?;
        Ok(page)
    }

    /// Appends up to `max` matching events of `shard` from `from` to `page`.
    async fn read_into(
        &self,
        shard: u16,
        from: u64,
        max: usize,
        page: &mut Vec<StoredEvent>,
    ) -> ConsumerResult<ShardPage> {
        let before = page.len();
        let read = self.shard_read(shard, from, max);
        let end = self.adapter.read_shard_into(read, page).await.map_err(adapter_error)?;
        if !(before..=before + max).contains(&page.len()) {
            let now = page.len();
            return Err(self.broken(format!(
                "changed the page from {before} to {now} events reading up to {max} of shard {shard}"
            )));
        }
        self.check_progress(shard, from, &end, page.len() - before)?;
        Ok(end)
    }

    /// Each shard's events in sequence order, read straight into the page: a fair share of
    /// every shard, then what is left of the page from shards that have more. A shard the page
    /// has no room left for is only looked at (one event, not returned), so `has_more` stays
    /// exact.
    async fn read_in_sequence(
        &self,
        shards: &[u16],
        cursor: &Cursor,
        limit: usize,
        share: usize,
        page: &mut Vec<StoredEvent>,
        missed: &mut u64,
    ) -> ConsumerResult<Vec<ShardEnd>> {
        let mut ends = Vec::with_capacity(shards.len());
        for &shard in shards {
            let from = cursor.position(shard);
            let room = share.min(limit - page.len());
            let end = if room > 0 {
                let read = self.read_into(shard, from, room, page).await?;
                *missed = missed.saturating_add(read.missed);
                ShardEnd { shard, position: read.next, more: read.more }
            } else {
                let peek = self.read(shard, from, 1).await?;
                *missed = missed.saturating_add(peek.missed);
                let position = peek.events.first().map_or(peek.next, |e| e.sequence);
                ShardEnd { shard, position, more: !peek.events.is_empty() || peek.more }
            };
            ends.push(end);
        }
        for end in &mut ends {
            let room = limit - page.len();
            if room == 0 {
                break;
            }
            if end.more {
                let read = self.read_into(end.shard, end.position, room, page).await?;
                *missed = missed.saturating_add(read.missed);
                (end.position, end.more) = (read.next, read.more);
            }
        }
        Ok(ends)
    }

    /// Reads up to `max` more matching events of one shard into its buffer; returns events
    /// missed.
    async fn refill(&self, buffer: &mut ShardBuffer, max: usize) -> ConsumerResult<u64> {
        let ShardPage { events, next, missed, more } = self.read(buffer.shard, buffer.next, max).await?;
        if buffer.events.is_empty() {
            buffer.events = events.into(); // no copy: a Vec becomes a VecDeque in place
        } else {
            buffer.events.extend(events);
        }
        buffer.next = next;
        buffer.more = more;
        Ok(missed)
    }

    /// A k-way merge by `(timestamp_ns, shard, sequence)`.
    ///
    /// Shards stamp a batch's events with consecutive timestamps, so a page is usually a few
    /// long runs from one shard each, not an even interleave. The merge therefore takes whole
    /// runs: the shard with the smallest head gives every event below the next shard's head in
    /// one move, and the heap is touched once per run. Reads start at a quarter of the fair
    /// share and double each time a shard runs dry, so shards that contribute little to a page
    /// are read little (what is read and not returned is read again by the next poll). A
    /// shard's buffer is refilled the moment it runs dry, before anything else is taken,
    /// because its next event may be the smallest.
    async fn merge_by_timestamp(
        &self,
        shards: &[u16],
        cursor: &Cursor,
        limit: usize,
        share: usize,
        events: &mut Vec<StoredEvent>,
        missed: &mut u64,
    ) -> ConsumerResult<Vec<ShardEnd>> {
        let first_read = share.div_ceil(4);
        let mut buffers = Vec::with_capacity(shards.len());
        for &shard in shards {
            let next = cursor.position(shard);
            let mut buffer = ShardBuffer { shard, events: VecDeque::new(), next, more: true, read_size: first_read };
            *missed = missed.saturating_add(self.refill(&mut buffer, first_read).await?);
            buffers.push(buffer);
        }
        let key = |e: &StoredEvent| (e.timestamp_ns, e.shard, e.sequence);
        let mut heap = BinaryHeap::with_capacity(buffers.len());
        for (index, buffer) in buffers.iter().enumerate() {
            if let Some(front) = buffer.events.front() {
                heap.push(Reverse((key(front), index)));
            }
        }
        while events.len() < limit {
            let Some(Reverse((_, index))) = heap.pop() else { break };
            // Keys are unique across shards (they hold the shard), so `<` is a strict order.
            let bound = heap.peek().map(|Reverse((key, _))| *key);
            let buffer = &mut buffers[index];
            loop {
                let room = limit - events.len();
                let run = buffer.events.iter().take(room).take_while(|e| bound.is_none_or(|b| key(e) < b)).count();
                events.extend(buffer.events.drain(..run));
                if events.len() == limit || !buffer.events.is_empty() || !buffer.more {
                    break;
                }
                buffer.read_size *= 2;
                *missed = missed.saturating_add(self.refill(buffer, buffer.read_size.min(limit - events.len())).await?);
            }
            if let Some(front) = buffer.events.front() {
                heap.push(Reverse((key(front), index)));
            }
        }
        Ok(buffers.iter().map(|b| ShardEnd { shard: b.shard, position: b.position(), more: b.has_more() }).collect())
    }
}
