//! Reading a page across shards: fair sequence order, a true timestamp merge, long poll.
//!
//! The cursor for a shard moves to the first event this poll examined but did not return, or
//! past everything examined when all of it was returned or rejected by the filter. So the next
//! poll starts exactly where this one stopped, whatever the filter and ordering: no match on a
//! later shard is skipped because an earlier shard filled the page (failure modes 23, 24).

use super::{ConsumeRequest, ConsumeResponse, Cursor, IdPool, Ordering, StoredEvent};
use crate::adapter::{Adapter, ShardPage, ShardRead};
use crate::error::{ConsumerError, ConsumerResult};
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

/// Ids are written into strings from `recycled_ids` where the adapter supports it.
pub(crate) async fn poll(
    adapter: Arc<dyn Adapter>,
    request: ConsumeRequest,
    shards: Vec<u16>,
    delivered: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    recycled_ids: Option<&IdPool>,
) -> ConsumerResult<ConsumeResponse> {
    let mut cursor = match &request.from_id {
        Some(text) => Cursor::decode(text).map_err(|e| ConsumerError::InvalidCursor(e.to_string()))?,
        None => Cursor::start(),
    };
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
        let page = reader.read_page(&shards, &cursor).await?;
        missed += page.missed;
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
            return Err(ConsumerError::Adapter(crate::AdapterError::Shutdown));
        }
        let positions: Vec<(u16, u64)> = shards.iter().map(|&s| (s, cursor.position(s))).collect();
        tokio::select! {
            _ = notified => {}
            woke = adapter.wait_for_events(&positions, deadline.into_std()) => woke?,
            _ = tokio::time::sleep_until(deadline) => {}
        }
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

impl Reader<'_> {
    async fn read_page(&self, shards: &[u16], cursor: &Cursor) -> ConsumerResult<Page> {
        let limit = self.request.limit;
        let mut missed = 0;
        // First read: a fair share per shard, so one busy shard cannot starve the others.
        let share = limit.div_ceil(shards.len().max(1)).max(1);
        let mut buffers = Vec::with_capacity(shards.len());
        for &shard in shards {
            let mut buffer = ShardBuffer { shard, events: VecDeque::new(), next: cursor.position(shard), more: true };
            missed += self.refill(&mut buffer, share).await?;
            buffers.push(buffer);
        }
        let events = match self.request.ordering {
            Ordering::Sequence => self.take_in_sequence(&mut buffers, limit, &mut missed).await?,
            Ordering::Timestamp => self.merge_by_timestamp(&mut buffers, limit, share, &mut missed).await?,
        };
        let mut next = cursor.clone();
        for buffer in &buffers {
            next.advance(buffer.shard, buffer.position());
        }
        let has_more = buffers.iter().any(ShardBuffer::has_more);
        Ok(Page { events, cursor: next, has_more, missed })
    }

    /// Reads up to `max` more matching events of one shard into its buffer; returns events
    /// missed.
    async fn refill(&self, buffer: &mut ShardBuffer, max: usize) -> ConsumerResult<u64> {
        let read = ShardRead {
            shard: buffer.shard,
            from: buffer.next,
            max_events: max,
            filter: self.request.filter.as_ref(),
            recycled_ids: self.recycled_ids,
        };
        let adapter = self.adapter;
        let ShardPage { events, next, missed, more } =
            adapter.read_shard(read).await.map_err(ConsumerError::Adapter)?;
        if next < buffer.next {
            return Err(ConsumerError::Adapter(crate::AdapterError::Fatal(format!(
                "adapter {} moved shard {} backwards ({} -> {next})",
                adapter.name(),
                buffer.shard,
                buffer.next
            ))));
        }
        if buffer.events.is_empty() {
            buffer.events = events.into(); // no copy: a Vec becomes a VecDeque in place
        } else {
            buffer.events.extend(events);
        }
        buffer.next = next;
        buffer.more = more;
        Ok(missed)
    }

    /// Shard after shard, each in sequence order: the fair shares first, then what is left of the
    /// page from shards that have more.
    async fn take_in_sequence(
        &self,
        buffers: &mut [ShardBuffer],
        limit: usize,
        missed: &mut u64,
    ) -> ConsumerResult<Vec<StoredEvent>> {
        let buffered: usize = buffers.iter().map(|b| b.events.len()).sum();
        if buffered < limit {
            let mut room = limit - buffered;
            for buffer in buffers.iter_mut() {
                if room == 0 {
                    break;
                }
                if buffer.more {
                    let before = buffer.events.len();
                    *missed += self.refill(buffer, room).await?;
                    room -= buffer.events.len() - before;
                }
            }
        }
        let total = limit.min(buffers.iter().map(|b| b.events.len()).sum());
        let mut events = Vec::new();
        for buffer in buffers.iter_mut() {
            let take = (total - events.len()).min(buffer.events.len());
            if events.is_empty() && take == buffer.events.len() {
                // The first shard's buffer becomes the page without moving its events (the whole
                // page, on one shard); it grows once to hold the others'.
                events = std::mem::take(&mut buffer.events).into();
                events.reserve_exact(total - take);
            } else if take == buffer.events.len() {
                // Never popped from, so the deque is a Vec in place: one bulk copy.
                events.append(&mut Vec::from(std::mem::take(&mut buffer.events)));
            } else {
                events.extend(buffer.events.drain(..take));
            }
        }
        Ok(events)
    }

    /// A k-way merge by `(timestamp_ns, shard, sequence)`. A shard's buffer is refilled the moment
    /// it runs dry, before anything else is taken, because its next event may be the smallest.
    async fn merge_by_timestamp(
        &self,
        buffers: &mut [ShardBuffer],
        limit: usize,
        chunk: usize,
        missed: &mut u64,
    ) -> ConsumerResult<Vec<StoredEvent>> {
        let key = |e: &StoredEvent| (e.timestamp_ns, e.shard, e.sequence);
        let mut heap = BinaryHeap::with_capacity(buffers.len());
        for (index, buffer) in buffers.iter().enumerate() {
            if let Some(front) = buffer.events.front() {
                heap.push(Reverse((key(front), index)));
            }
        }
        let mut events = Vec::with_capacity(limit.min(4096));
        while events.len() < limit {
            let Some(Reverse((_, index))) = heap.pop() else { break };
            let buffer = &mut buffers[index];
            if let Some(event) = buffer.events.pop_front() {
                events.push(event);
            }
            if buffer.events.is_empty() && buffer.more && events.len() < limit {
                *missed += self.refill(buffer, chunk.min(limit - events.len())).await?;
            }
            if let Some(front) = buffer.events.front() {
                heap.push(Reverse((key(front), index)));
            }
        }
        Ok(events)
    }
}
