"""Round trips through Redis Streams and NATS JetStream, configured by the JSON config.

They need a library built with the `redis` and `jetstream` features and the servers on their
standard ports (`.ci/test-all` provides both). Elsewhere they skip, unless
`PURPLE_RAIN_BROKERS=1` says they must run (CI sets it, so a missing feature fails there).
"""

from __future__ import annotations

import os
import socket
import threading
import time
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


class StallingProxy:
    """A TCP proxy to a server that can stop forwarding (the connection stays open, the bytes
    stop): a stalled broker, as a real connection sees it."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self.forwarding.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            src.close()
            dst.close()

    def close(self) -> None:
        self.forwarding.set()
        self.listener.close()


def test_flush_with_a_deadline_while_redis_stalls() -> None:
    if not answers(6379):
        pytest.skip("nothing answers on 127.0.0.1:6379")
    proxy = StallingProxy(6379)
    prefix = f"pytest-{uuid.uuid4().hex[:12]}"
    adapter = {"type": "redis", "url": f"redis://127.0.0.1:{proxy.port}", "stream_prefix": prefix,
               "command_timeout_ms": 30000}
    bus = open_bus(adapter, proxy.port)
    try:
        bus.ingest_raw(b"before")
        assert bus.flush(timeout=20).undelivered == 0
        proxy.forwarding.clear()  # the broker stops answering
        bus.ingest_many([b"%d" % i for i in range(100)])
        started = time.monotonic()
        with pytest.raises(purple_rain.Timeout) as info:
            bus.flush(timeout=0.3)
        assert time.monotonic() - started < 10
        report = info.value.report
        assert report is not None and 0 < report.undelivered <= 100
        proxy.forwarding.set()  # it comes back: nothing was cancelled
        assert bus.flush(timeout=30) == purple_rain.FlushReport(0, 0, False)
        assert bus.stats().events_dispatched == 101
    finally:
        proxy.close()
        bus.shutdown()
