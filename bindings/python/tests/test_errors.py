"""Errors: one class per library status, raised with the library's message."""

from __future__ import annotations

import gc

import pytest

import purple_rain
from purple_rain import Bus, PurpleRainError, _lib


def library_statuses() -> dict[int, str]:
    """Every status the loaded library names (it calls unknown numbers PR_UNKNOWN_STATUS)."""
    names = {n: _lib.status_name(n) for n in range(1, 256)}
    return {n: s for n, s in names.items() if s != "PR_UNKNOWN_STATUS"}


def test_every_library_status_has_its_own_class() -> None:
    statuses = library_statuses()
    assert len(statuses) >= 19
    for code, name in statuses.items():
        err = _lib.error(code)
        assert type(err) is not PurpleRainError, name
        assert isinstance(err, PurpleRainError)
        assert (err.code, err.status) == (code, name)
        assert getattr(purple_rain, type(err).__name__) is type(err)


def test_named_classes_exist() -> None:
    assert purple_rain.Backpressure.status == "PR_ERR_BACKPRESSURE"
    assert purple_rain.ShuttingDown.status == "PR_ERR_SHUTTING_DOWN"
    assert purple_rain.InvalidCursor.status == "PR_ERR_INVALID_CURSOR"


def test_unknown_status_still_raises_the_base_class() -> None:
    err = _lib.error(250)
    assert type(err) is PurpleRainError and err.code == 250


@pytest.mark.parametrize(
    "config, kind",
    [
        ('{"shards": ', purple_rain.InvalidJson),
        ({"shards": "four"}, purple_rain.Config),
        ({"no_such_key": 1}, purple_rain.Config),
        ({"adapter": {"type": "nope"}}, purple_rain.Config),
    ],
)
def test_bad_config(config: object, kind: type) -> None:
    with pytest.raises(kind) as info:
        Bus(config)  # type: ignore[arg-type]
    assert info.value.message and info.value.status in str(info.value)


def test_bad_cursor(bus: Bus) -> None:
    with pytest.raises(purple_rain.InvalidCursor, match="cursor"):
        bus.poll(10, cursor="not-a-cursor")


def test_bad_filter(bus: Bus) -> None:
    with pytest.raises(purple_rain.InvalidFilter):
        bus.poll(10, filter={"$and": []})
    with pytest.raises(purple_rain.InvalidFilter):
        bus.poll(10, filter={"$nope": 1})


def test_bad_request(bus: Bus) -> None:
    with pytest.raises(purple_rain.InvalidRequest):
        bus.poll(10, shards=[99])


def test_packed_ends_are_checked(bus: Bus) -> None:
    with pytest.raises(purple_rain.InvalidArgument) as info:
        bus.ingest_packed(b"abc", [2, 1])
    assert info.value.accepted == 0
    assert bus.stats().events_ingested == 0


def test_use_after_shutdown(bus: Bus) -> None:
    bus.ingest_raw(b"before")
    bus.shutdown()
    bus.shutdown()  # idempotent
    with pytest.raises(purple_rain.ShuttingDown):
        bus.ingest_raw(b"x")
    with pytest.raises(purple_rain.ShuttingDown) as info:
        bus.ingest_many([b"a", b"b"])
    assert info.value.accepted == 0
    with pytest.raises(purple_rain.ShuttingDown):
        bus.poll(10)
    with pytest.raises(purple_rain.ShuttingDown):
        bus.flush()
    s = bus.stats()
    assert s.events_ingested == 1 and s.events_dispatched == 1


def test_context_manager_shuts_down_on_exit_also_on_error() -> None:
    with pytest.raises(RuntimeError):
        with Bus({"adapter": {"type": "memory"}}) as bus:
            bus.ingest_raw(b"x")
            raise RuntimeError("boom")
    with pytest.raises(purple_rain.ShuttingDown):
        bus.ingest_raw(b"y")
    assert bus.stats().events_dispatched == 1


def test_bus_is_freed_when_garbage_without_shutdown() -> None:
    import weakref

    for _ in range(3):
        b = Bus({"adapter": {"type": "memory"}})
        b.ingest_raw(b"x")
        gone = weakref.ref(b)
        del b
        gc.collect()
        assert gone() is None  # its handle went to pr_bus_free with it


def test_backpressure_in_drop_newest_mode() -> None:
    config = {
        "shards": 1,
        "ring_capacity": 2,
        "backpressure": "drop_newest",
        "adapter": {"type": "memory"},
    }
    with Bus(config) as bus:
        with pytest.raises(purple_rain.Backpressure):
            for _ in range(1_000_000):
                bus.ingest_raw(b"x" * 100)
        assert bus.stats().rejected_backpressure >= 1


def test_flush_reports_each_drop_once() -> None:
    # A tiny drop_oldest ring under one big batch evicts: the first report says exactly what
    # was dropped, the next one nothing.
    config = {"shards": 1, "ring_capacity": 64, "backpressure": "drop_oldest", "adapter": {"type": "memory"}}
    with Bus(config) as bus:
        bus.ingest_many([b"%d" % i for i in range(5000)])
        report = bus.flush(timeout=10)
        assert isinstance(report, purple_rain.FlushReport)
        assert report.dropped == bus.stats().events_dropped
        assert report.lossy == (report.dropped > 0) and report.undelivered == 0
        assert bus.flush() == purple_rain.FlushReport(0, 0, False)
