"""`Bus`: one running event bus, over `pr_bus`.

Every call releases the GIL while it is inside the library (cffi does so for each call), so a
long poll, a flush or a blocking ingest never stops other Python threads. A `Bus` may be used
from any number of threads at once. `shutdown()` (also on leaving a `with` block) stops it;
the handle itself is freed when the object is garbage (`pr_bus_free` through `ffi.gc`), which
is the one moment no thread can still be inside a call on it.
"""

from __future__ import annotations

import asyncio
import json
import math
from array import array
from functools import partial
from itertools import accumulate
from types import TracebackType
from typing import Any, AsyncIterator, Iterable, Iterator, List, Literal, Optional, Protocol, Union

from . import _events
from ._lib import Cdata, check, error, ffi, lib
from .page import Event, Page, PackedPage, page_tail as _page_tail, read_packed
from .stats import FlushReport, ScalingDecision, Stats
from ._kinds import ShuttingDown, Timeout

Json = Any
Buffer = Union[bytes, bytearray, memoryview]
Ordering = Literal["sequence", "timestamp"]


class Bus:
    """A running event bus.

    `config` is the JSON config (the README's shape) as a dict or a string; `None` gives the
    defaults (4 shards, Noop adapter). For an embedded log to poll from, use
    `{"adapter": {"type": "memory"}}`.

    >>> with Bus({"shards": 2, "adapter": {"type": "memory"}}) as bus:
    ...     bus.ingest({"kind": "click"})
    ...     bus.flush().lossy
    ...     [e.payload for e in bus.poll(10)]
    False
    [b'{"kind": "click"}']
    """

    def __init__(self, config: Union[dict[str, Json], str, None] = None) -> None:
        text = config if isinstance(config, str) or config is None else json.dumps(config)
        out = ffi.new("pr_bus **")
        check(lib.pr_bus_new(ffi.NULL if text is None else text.encode(), out))
        self._ptr: Cdata = ffi.gc(out[0], lib.pr_bus_free)
        address = int(ffi.cast("uintptr_t", self._ptr))
        self.ingest_raw = partial(_events.ingest_raw, address, self._ptr, _ingest_raw, error)

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> "Bus":
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Drains, flushes and stops the bus; idempotent. Later ingest, poll and flush calls
        raise `ShuttingDown`; `stats()` keeps working (the final counters)."""
        check(lib.pr_shutdown(self._ptr))

    close = shutdown

    def flush(self, timeout: Optional[float] = None) -> FlushReport:
        """Returns once every event accepted before the call reached the adapter (or was counted
        dropped) and the adapter flushed, with what was dropped since the previous `flush`.

        `timeout` (seconds; `None` waits without a deadline) bounds the wait: past it, raises
        `Timeout`, whose `report` says how many events are still undelivered. A timeout cancels
        nothing: those events stay queued and keep being delivered."""
        report = ffi.new("pr_flush_report *")
        ms = _NO_DEADLINE if timeout is None else max(0, math.ceil(timeout * 1000))
        rc = lib.pr_flush_timeout(self._ptr, ms, report)
        result = FlushReport(int(report.undelivered), int(report.dropped), bool(report.lossy))
        if rc:
            err = error(rc)
            if isinstance(err, Timeout):
                err.report = result
            raise err
        return result

    # -- ingest ---------------------------------------------------------------------------

    def ingest(self, obj: Json) -> None:
        """Serialises `obj` with `json.dumps` and ingests it."""
        data = json.dumps(obj).encode()
        check(lib.pr_ingest(self._ptr, data, len(data)))

    ingest_raw: IngestRaw
    """`ingest_raw(data, key=None)`: ingests opaque bytes (copied), routed by their hash, or
    by `key`'s: events with one key go to one shard, in order. Raises `Backpressure` when the
    ring is full in `drop_newest` mode. (A C function bound to this bus: a `bytes` event
    reaches the library with no Python frame in between.)"""

    def ingest_packed(self, data: Buffer, ends: Any) -> int:
        """Ingests `len(ends)` events in one call: event `i` is `data[ends[i-1]:ends[i]]`.
        `ends` is an `array('I')`, a numpy `uint32` array or any sequence of ints.

        Stops at the first event the bus refuses and raises its error, whose `accepted` says
        how many events went in before it. Returns the number accepted (all of them)."""
        ends_buf = _u32(ends)
        count = len(ends_buf)
        accepted = ffi.new("size_t *")
        rc = lib.pr_ingest_raw_packed(
            self._ptr,
            _cbytes(data),
            len(data),
            ffi.from_buffer("uint32_t[]", ends_buf),
            count,
            accepted,
        )
        if rc:
            err = error(rc)
            err.accepted = accepted[0]
            raise err
        return int(accepted[0])

    def ingest_many(self, events: Iterable[bytes]) -> int:
        """Ingests a batch of `bytes` events in one call (packed here); as `ingest_packed`."""
        items = list(events)
        return self.ingest_packed(b"".join(items), array("I", accumulate(map(len, items))))

    # -- poll -----------------------------------------------------------------------------

    def poll(
        self,
        limit: int = 100,
        cursor: Optional[str] = None,
        filter: Union[dict[str, Json], str, None] = None,
        ordering: Ordering = "sequence",
        wait: Optional[float] = None,
        shards: Optional[List[int]] = None,
    ) -> Page:
        """Reads up to `limit` events after `cursor` (`None`: from the start).

        `filter` is a filter in the README's JSON shape (dict or string); `ordering` merges
        shards by sequence or by timestamp; `wait` (seconds) waits that long for events when
        none are there. Continue with the page's `cursor`: never a repeat, never a skip.
        Payloads are `bytes` copies, valid independently of the page."""
        result = self._poll(limit, cursor, filter, ordering, wait, shards)
        try:
            events = _events.page_events(Event, int(ffi.cast("uintptr_t", result)))
            return Page(events, *_page_tail(result))
        finally:
            lib.pr_poll_result_free(result)

    def poll_packed(
        self,
        limit: int = 100,
        cursor: Optional[str] = None,
        filter: Union[dict[str, Json], str, None] = None,
        ordering: Ordering = "sequence",
        wait: Optional[float] = None,
        shards: Optional[List[int]] = None,
    ) -> PackedPage:
        """As `poll`, but the page comes as flat arrays (one payload buffer and `ends`), with
        no Python object per event: the fast form for bulk consumers."""
        result = self._poll(limit, cursor, filter, ordering, wait, shards)
        try:
            return read_packed(result)
        finally:
            lib.pr_poll_result_free(result)

    def _poll(
        self,
        limit: int,
        cursor: Optional[str],
        filter: Union[dict[str, Json], str, None],
        ordering: Ordering,
        wait: Optional[float],
        shards: Optional[List[int]],
    ) -> Cdata:
        """`pr_poll`: a live result the caller frees."""
        request: dict[str, Json] = {"limit": limit, "ordering": ordering}
        if cursor is not None:
            request["from"] = cursor
        if filter is not None:
            request["filter"] = json.loads(filter) if isinstance(filter, str) else filter
        if wait is not None:
            request["wait_ms"] = max(0, math.ceil(wait * 1000))
        if shards is not None:
            request["shards"] = shards
        out = ffi.new("pr_poll_result **")
        check(lib.pr_poll(self._ptr, json.dumps(request).encode(), out))
        return out[0]

    def subscribe(
        self,
        cursor: Optional[str] = None,
        filter: Union[dict[str, Json], str, None] = None,
        *,
        limit: int = 1000,
        wait: float = 1.0,
    ) -> "Subscription":
        """Tails the bus from `cursor`: an iterator of events that long-polls for new ones and
        ends when the bus shuts down. Its `cursor` resumes where it stopped."""
        return Subscription(self, cursor, filter, limit, wait)

    # -- counters and scaling -------------------------------------------------------------

    def stats(self) -> Stats:
        """The bus counters (also after shutdown: the final ones)."""
        out = ffi.new("pr_stats *")
        check(lib.pr_stats_get(self._ptr, out))
        return Stats.from_c(out)

    def shard_ids(self) -> List[int]:
        """The live shard ids, ascending."""
        ids = ffi.new("uint16_t[]", lib.PR_MAX_SHARDS)
        n = ffi.new("size_t *")
        check(lib.pr_shard_ids(self._ptr, ids, lib.PR_MAX_SHARDS, n))
        return list(ffi.unpack(ids, n[0]))

    def add_shards(self, count: int) -> List[int]:
        """Adds `count` running shards and returns their new ids."""
        ids = ffi.new("uint16_t[]", max(count, 1))
        n = ffi.new("size_t *")
        check(lib.pr_add_shards(self._ptr, count, ids, count, n))
        return list(ffi.unpack(ids, n[0]))

    def remove_shards(self, ids: Iterable[int]) -> None:
        """Removes shards; their queued events are drained first and they stay pollable."""
        arr = array("H", ids)
        check(lib.pr_remove_shards(self._ptr, ffi.from_buffer("uint16_t[]", arr), len(arr)))

    def suggest_scaling(self) -> ScalingDecision:
        """A scaling recommendation from the load since the previous call."""
        out = ffi.new("pr_scaling_decision *")
        check(lib.pr_suggest_scaling(self._ptr, out))
        action = {lib.PR_SCALING_UP: "up", lib.PR_SCALING_DOWN: "down"}.get(out.action, "none")
        ids = list(ffi.unpack(out.shard_ids, out.count)) if action == "down" else []
        return ScalingDecision(action, int(out.count), ids)

    # -- asyncio --------------------------------------------------------------------------

    async def apoll(self, *args: Any, **kwargs: Any) -> Page:
        """`poll` on a worker thread, so a long poll does not block the event loop."""
        return await asyncio.to_thread(self.poll, *args, **kwargs)

    async def apoll_packed(self, *args: Any, **kwargs: Any) -> PackedPage:
        """`poll_packed` on a worker thread."""
        return await asyncio.to_thread(self.poll_packed, *args, **kwargs)

    async def aflush(self, timeout: Optional[float] = None) -> FlushReport:
        """`flush` on a worker thread."""
        return await asyncio.to_thread(self.flush, timeout)

    async def ashutdown(self) -> None:
        """`shutdown` on a worker thread."""
        await asyncio.to_thread(self.shutdown)

    async def asubscribe(
        self,
        cursor: Optional[str] = None,
        filter: Union[dict[str, Json], str, None] = None,
        *,
        limit: int = 1000,
        wait: float = 1.0,
    ) -> AsyncIterator[Event]:
        """`subscribe` for asyncio: each long poll runs on a worker thread."""
        while True:
            try:
                page = await self.apoll(limit, cursor, filter, wait=wait)
            except ShuttingDown:
                return
            cursor = page.cursor
            for event in page.events:
                yield event


class Subscription:
    """Iterator of events from `Bus.subscribe`; `cursor` is the position after the last page
    read (pass it to a later `subscribe` to resume)."""

    def __init__(
        self,
        bus: Bus,
        cursor: Optional[str],
        filter: Union[dict[str, Json], str, None],
        limit: int,
        wait: float,
    ) -> None:
        self.cursor = cursor
        self._bus, self._filter, self._limit, self._wait = bus, filter, limit, wait
        self._pending: Iterator[Event] = iter(())

    def __iter__(self) -> "Subscription":
        return self

    def __next__(self) -> Event:
        while True:
            event = next(self._pending, None)
            if event is not None:
                return event
            try:
                page = self._bus.poll(self._limit, self.cursor, self._filter, wait=self._wait)
            except ShuttingDown:
                raise StopIteration from None
            self.cursor = page.cursor
            self._pending = iter(page.events)


class IngestRaw(Protocol):
    def __call__(self, data: Buffer, key: Optional[Buffer] = None) -> None: ...


def _ingest_raw(bus: Cdata, data: Buffer, key: Optional[Buffer] = None) -> None:
    """`Bus.ingest_raw` for what its C fast path hands on: a key, or a buffer other than
    `bytes` (passed without a copy)."""
    if key is None:
        rc = lib.pr_ingest_raw(bus, _cbytes(data), len(data))
    else:
        rc = lib.pr_ingest_raw_with_key(bus, _cbytes(data), len(data), _cbytes(key), len(key))
    if rc:
        raise error(rc)


_NO_DEADLINE = 2**64 - 1  # UINT64_MAX: pr_flush_timeout without a deadline


def _cbytes(data: Buffer) -> Cdata:
    """A `const uint8_t *` over `data` without copying it."""
    return ffi.from_buffer("uint8_t[]", data)


def _u32(ends: Any) -> Any:
    """`ends` as a buffer of native uint32 (no copy when it already is one)."""
    try:
        view = memoryview(ends)
        if view.itemsize == 4 and view.format in ("I", "=I", "<I") and view.c_contiguous:
            return ends
    except TypeError:
        pass
    return array("I", ends)
