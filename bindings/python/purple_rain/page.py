"""Poll pages: `Page` (a list of `Event`s) and `PackedPage` (flat arrays, no object per event).

Both are read out of the library's `pr_poll_result` in one crossing (`Event`s by
`_events.c`, packed arrays by `prpy_packed` in the cffi extension), which is then freed at once: nothing here borrows library memory, so payloads,
ids and arrays stay valid for as long as Python holds them.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator, List, NamedTuple, Tuple

from . import _events
from ._lib import Cdata, ffi, lib


class Event(NamedTuple):
    """One polled event. `payload` is a `bytes` copy: it owes nothing to the page."""

    payload: bytes
    id: str
    shard: int
    sequence: int
    timestamp_ns: int
    origin: int = 0
    """The node that ingested the event (the Net adapter's node id); 0 from other adapters."""


@dataclass(frozen=True)
class PackedPage:
    """A page as flat arrays (the shape of the Node binding's `pollPacked`).

    Event `i`'s payload is `data[ends[i-1]:ends[i]]` (with `ends[-1] = 0`); `payload(i)` gives
    it as a zero-copy `memoryview` of `data`. `ids()` decodes the ids only when asked.
    """

    data: bytes
    ends: "array[int]"
    shards: "array[int]"
    sequences: "array[int]"
    timestamps_ns: "array[int]"
    origins: "array[int]"
    """Each event's origin node (`Event.origin`): the Net adapter's node ids, else zeros."""
    cursor: str
    has_more: bool
    missed: int
    _ids: bytes = field(repr=False)

    def __len__(self) -> int:
        return len(self.ends)

    def payload(self, i: int) -> memoryview:
        """Event `i`'s payload, a view into `data` (no copy)."""
        start = self.ends[i - 1] if i > 0 else 0
        return memoryview(self.data)[start : self.ends[i]]

    def payloads(self) -> List[bytes]:
        """Every payload as its own `bytes`, in page order."""
        ends = self.ends
        return list(map(self.data.__getitem__, map(slice, _starts(ends), ends)))

    def ids(self) -> List[str]:
        """Every event's id, in page order (decoded on the first call)."""
        return list(self._id_list)

    def id(self, i: int) -> str:
        """Event `i`'s id."""
        return self._id_list[i]

    def event(self, i: int) -> Event:
        """Event `i` as an `Event` (a copy of its payload)."""
        return Event(
            bytes(self.payload(i)),
            self._id_list[i],
            self.shards[i],
            self.sequences[i],
            self.timestamps_ns[i],
            self.origins[i],
        )

    @cached_property
    def _id_list(self) -> List[str]:
        return self._ids[:-1].decode().split("\0") if self._ids else []

    def events(self) -> List[Event]:
        """The page as `Event` objects, built in C (`_events.c`) from the flat arrays."""
        n = len(self.ends)
        if n == 0:
            return []
        return _events.events(
            Event,
            n,
            _address(self.data),
            self.ends.buffer_info()[0],
            _address(self._ids),
            self.shards.buffer_info()[0],
            self.sequences.buffer_info()[0],
            self.timestamps_ns.buffer_info()[0],
            self.origins.buffer_info()[0],
        )


@dataclass(frozen=True)
class Page:
    """A page of events, with the cursor to continue from and whether more is waiting."""

    events: List[Event]
    cursor: str
    has_more: bool
    missed: int = 0
    """Events retention trimmed before this consumer read them (it fell behind)."""

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)


def _address(buffer: bytes) -> int:
    """Where `buffer`'s bytes are (valid while `buffer` lives)."""
    return int(ffi.cast("uintptr_t", ffi.from_buffer(buffer)))


def _starts(ends: "array[int]") -> Iterator[int]:
    yield 0
    yield from ends[:-1] if len(ends) else ()


def read_packed(result: Cdata) -> PackedPage:
    """Copies a live `pr_poll_result` into a `PackedPage` (the caller frees the result)."""
    n = lib.pr_poll_result_len(result)
    sizes = ffi.new("size_t[2]")
    lib.prpy_sizes(result, sizes, sizes + 1)
    data = bytearray(sizes[0])
    ids = bytearray(sizes[1])
    ends = array("I", bytes(4 * n))
    shards = array("H", bytes(2 * n))
    sequences = array("Q", bytes(8 * n))
    timestamps = array("Q", bytes(8 * n))
    origins = array("Q", bytes(8 * n))
    if n:
        rc = lib.prpy_packed(
            result,
            ffi.from_buffer("uint8_t[]", data),
            ffi.from_buffer("uint32_t[]", ends),
            ffi.from_buffer("char[]", ids),
            ffi.from_buffer("uint16_t[]", shards),
            ffi.from_buffer("uint64_t[]", sequences),
            ffi.from_buffer("uint64_t[]", timestamps),
            ffi.from_buffer("uint64_t[]", origins),
        )
        if rc != 0:
            raise OverflowError("a page of more than 4 GiB of payloads cannot be packed")
    cursor, has_more, missed = page_tail(result)
    return PackedPage(
        data=bytes(data),
        ends=ends,
        shards=shards,
        sequences=sequences,
        timestamps_ns=timestamps,
        origins=origins,
        cursor=cursor,
        has_more=has_more,
        missed=missed,
        _ids=bytes(ids),
    )


def page_tail(result: Cdata) -> Tuple[str, bool, int]:
    """A live result's cursor, `has_more` and `missed`."""
    return (
        ffi.string(lib.pr_poll_result_cursor(result)).decode(),
        bool(lib.pr_poll_result_has_more(result)),
        int(lib.pr_poll_result_missed(result)),
    )
