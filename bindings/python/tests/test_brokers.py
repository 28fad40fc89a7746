"""Round trips through Redis Streams and NATS JetStream, configured by the JSON config.

They need a library built with the `redis` and `jetstream` features and the servers on their
standard ports (`.ci/test-all` provides both). Elsewhere they skip, unless
`PURPLE_RAIN_BROKERS=1` says they must run (CI sets it, so a missing feature fails there).
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

import pytest

import purple_rain
from purple_rain import Bus

REQUIRED = os.environ.get("PURPLE_RAIN_BROKERS") == "1"


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def open_bus(adapter: dict[str, Any], port: int) -> Bus:
    if not answers(port):
        if REQUIRED:
            pytest.fail(f"nothing answers on 127.0.0.1:{port}")
        pytest.skip(f"nothing answers on 127.0.0.1:{port}")
    try:
        return Bus({"shards": 2, "backpressure": "block", "adapter": adapter})
    except purple_rain.Config as e:
        if REQUIRED or "feature" not in e.message:
            raise
        pytest.skip(f"library built without the adapter: {e}")


def round_trip(bus: Bus) -> None:
    sent = [b'{"n":%d,"kind":"%s"}' % (i, b"click" if i % 2 else b"view") for i in range(300)]
    with bus:
        bus.ingest_many(sent[:100])
        for payload in sent[100:]:
            bus.ingest_raw(payload)
        bus.flush()
        got: list[bytes] = []
        cursor = None
        while True:
            page = bus.poll(64, cursor)
            got += [e.payload for e in page]
            cursor = page.cursor
            if not page.has_more:
                break
        assert sorted(got) == sorted(sent)
        clicks = bus.poll(1000, filter={"path": "kind", "value": "click"})
        assert len(clicks) == 150
        s = bus.stats()
        assert s.events_dispatched == 300 and s.events_dropped == 0


def test_redis_round_trip() -> None:
    prefix = f"pytest-{uuid.uuid4().hex[:12]}"
    round_trip(open_bus({"type": "redis", "url": "redis://127.0.0.1:6379", "stream_prefix": prefix}, 6379))


def test_jetstream_round_trip() -> None:
    prefix = f"PYTEST_{uuid.uuid4().hex[:12].upper()}"
    round_trip(open_bus({"type": "jetstream", "url": "nats://127.0.0.1:4222", "stream_prefix": prefix}, 4222))
