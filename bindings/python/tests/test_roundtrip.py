"""Ingest and poll through the memory adapter: every form of ingest, pages, filters, ordering."""

from __future__ import annotations

import json
from array import array

from conftest import drain

from purple_rain import Bus, Event, PackedPage


def test_round_trip_keeps_every_payload_exactly(bus: Bus) -> None:
    sent = [json.dumps({"i": i, "pad": "x" * (i % 7)}).encode() for i in range(500)]
    for payload in sent:
        bus.ingest_raw(payload)
    bus.flush()
    got = drain(bus, limit=64)
    assert sorted(e.payload for e in got) == sorted(sent)
    assert all(isinstance(e, Event) and isinstance(e.payload, bytes) for e in got)


def test_every_ingest_form_arrives(bus: Bus) -> None:
    bus.ingest({"kind": "obj"})
    bus.ingest_raw(b"raw")
    bus.ingest_raw(bytearray(b"ba"), key=b"k")
    bus.ingest_raw(memoryview(b"__mv__")[2:4], key=memoryview(b"k"))
    assert bus.ingest_packed(b"aabbbc", array("I", [2, 5, 6])) == 3
    assert bus.ingest_packed(bytearray(b"xyz"), [1, 3]) == 2
    assert bus.ingest_many([b"m1", b"", b"m3"]) == 3
    bus.flush()
    got = sorted(e.payload for e in drain(bus))
    assert got == sorted(
        [b'{"kind": "obj"}', b"raw", b"ba", b"mv", b"aa", b"bbb", b"c", b"x", b"yz", b"m1", b"", b"m3"]
    )
    assert bus.stats().events_ingested == 12


def test_same_key_keeps_order_on_one_shard(bus: Bus) -> None:
    for i in range(200):
        bus.ingest_raw(str(i).encode(), key=b"user-7")
    bus.flush()
    got = drain(bus)
    assert len({e.shard for e in got}) == 1
    assert [int(e.payload) for e in got] == list(range(200))


def test_cursor_across_pages_never_repeats_or_skips(bus: Bus) -> None:
    for i in range(300):
        bus.ingest_raw(b"%d" % i)
    bus.flush()
    seen: list[bytes] = []
    cursor = None
    pages = 0
    while True:
        page = bus.poll(7, cursor)
        assert len(page) <= 7
        seen += [e.payload for e in page]
        cursor, pages = page.cursor, pages + 1
        if not page.has_more:
            break
    assert pages >= 300 // 7
    assert sorted(seen, key=int) == [b"%d" % i for i in range(300)]
    bus.ingest_raw(b"late")
    bus.flush()
    assert [e.payload for e in bus.poll(10, cursor)] == [b"late"]


def test_per_shard_sequences_increase(bus: Bus) -> None:
    for i in range(400):
        bus.ingest_raw(b"%d" % i)
    bus.flush()
    last: dict[int, int] = {}
    for e in drain(bus, limit=50):
        assert e.sequence > last.get(e.shard, -1)
        last[e.shard] = e.sequence
        assert e.id


def test_filter_selects_matching_json_only(bus: Bus) -> None:
    for i in range(100):
        bus.ingest({"kind": "click" if i % 3 == 0 else "view", "i": i})
    bus.ingest_raw(b"not json")
    bus.flush()
    clicks = drain(bus, filter={"path": "kind", "value": "click"})
    assert sorted(json.loads(e.payload)["i"] for e in clicks) == list(range(0, 100, 3))
    big = drain(bus, filter='{"$gte": {"path": "i", "value": 90}}')
    assert sorted(json.loads(e.payload)["i"] for e in big) == list(range(90, 100))


def test_timestamp_ordering_merges_shards_by_time(bus: Bus) -> None:
    for i in range(200):
        bus.ingest_raw(b"%d" % i)
    bus.flush()
    got = drain(bus, limit=30, ordering="timestamp")
    assert len(got) == 200
    stamps = [e.timestamp_ns for e in got]
    assert stamps == sorted(stamps)
    assert len({e.shard for e in got}) > 1


def test_shards_selects_a_subset(bus: Bus) -> None:
    for i in range(100):
        bus.ingest_raw(b"%d" % i)
    bus.flush()
    got = drain(bus, shards=[1])
    assert got and {e.shard for e in got} == {1}


def test_poll_packed_matches_poll(bus: Bus) -> None:
    for i in range(250):
        bus.ingest_raw(b"p" * (i % 11) + b"%d" % i)
    bus.flush()
    page = bus.poll(1000)
    packed = bus.poll_packed(1000)
    assert isinstance(packed, PackedPage) and len(packed) == 250
    assert packed.payloads() == [e.payload for e in page]
    assert packed.ids() == [e.id for e in page]
    assert list(packed.shards) == [e.shard for e in page]
    assert list(packed.sequences) == [e.sequence for e in page]
    assert list(packed.timestamps_ns) == [e.timestamp_ns for e in page]
    assert list(packed.origins) == [e.origin for e in page] == [0] * 250  # Memory: no nodes
    assert [packed.event(i) for i in range(len(packed))] == page.events
    assert [packed.id(i) for i in range(len(packed))] == packed.ids()
    assert [bytes(packed.payload(i)) for i in range(len(packed))] == packed.payloads()
    assert packed.events() == page.events
    assert packed.cursor == page.cursor and packed.has_more == page.has_more


def test_empty_page(bus: Bus) -> None:
    page = bus.poll(10)
    assert page.events == [] and not page.has_more and page.cursor
    packed = bus.poll_packed(10)
    assert len(packed) == 0 and packed.ids() == [] and packed.payloads() == []


def test_subscribe_tails_from_a_cursor(bus: Bus) -> None:
    for i in range(20):
        bus.ingest_raw(b"%d" % i)
    bus.flush()
    sub = bus.subscribe(limit=8, wait=0.05)
    first = [next(sub).payload for _ in range(20)]
    assert sorted(first, key=int) == [b"%d" % i for i in range(20)]
    bus.ingest_raw(b"next")
    bus.flush()
    assert next(sub).payload == b"next"


def test_scaling_adds_and_removes_shards(bus: Bus) -> None:
    assert bus.shard_ids() == [0, 1, 2, 3]
    added = bus.add_shards(2)
    assert added == [4, 5] and bus.shard_ids() == [0, 1, 2, 3, 4, 5]
    for i in range(100):
        bus.ingest_raw(b"%d" % i)
    bus.remove_shards([0, 4])
    assert bus.shard_ids() == [1, 2, 3, 5]
    bus.flush()
    assert len(drain(bus)) == 100
    assert bus.suggest_scaling().action in ("none", "up", "down")


def test_stats_dataclass_mirrors_pr_stats(bus: Bus) -> None:
    from dataclasses import fields

    from purple_rain import Stats, ffi

    assert [f.name for f in fields(Stats)] == [n for n, _ in ffi.typeof("pr_stats").fields]
    bus.ingest_raw(b"x")
    bus.flush()
    s = bus.stats()
    assert s.events_ingested == 1 and s.events_dispatched + s.events_dropped == 1


def test_ingest_raw_bound_alone_keeps_its_bus_alive() -> None:
    import gc
    import weakref

    bus = Bus({"adapter": {"type": "memory"}})
    ingest = bus.ingest_raw
    gone = weakref.ref(bus)
    del bus
    gc.collect()
    assert gone() is None  # the Bus object is gone, its C handle is not
    for _ in range(1000):
        ingest(b"still here")  # on a freed handle this would crash or fail
    ingest(b"keyed", b"k")  # positional key: the Python path


def test_ingest_raw_rejects_what_is_not_bytes_like(bus: Bus) -> None:
    import pytest

    with pytest.raises(TypeError):
        bus.ingest_raw("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        bus.ingest_raw()  # type: ignore[call-arg]
    assert bus.stats().events_ingested == 0
