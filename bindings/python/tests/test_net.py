"""Two buses joined by the Net adapter through the JSON config, in this one process on loopback:
each holds both nodes' events exactly once, each with the node that ingested it as `origin`."""

from __future__ import annotations

import json
import secrets
import socket
import time
from typing import Dict, List, Set

from purple_rain import Bus, Event

N = 500


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def poll_until(bus: Bus, want: int) -> List[Event]:
    """Long-polls `bus` from the start until it returned `want` events or 30 s passed."""
    events: List[Event] = []
    cursor = None
    deadline = time.monotonic() + 30
    while len(events) < want and time.monotonic() < deadline:
        page = bus.poll(1000, cursor, wait=0.1)
        events.extend(page.events)
        cursor = page.cursor
    return events


def test_two_nodes_round_trip_with_origins() -> None:
    key = secrets.token_hex(32)
    port_a, port_b = free_port(), free_port()
    config_a = {"adapter": {"type": "net", "listen": f"127.0.0.1:{port_a}", "key": key}}
    config_b = {
        "adapter": {
            "type": "net",
            "listen": f"127.0.0.1:{port_b}",
            "peers": [f"127.0.0.1:{port_a}"],
            "key": key,
        }
    }
    with Bus(json.dumps(config_a)) as a, Bus(config_b) as b:
        for i in range(N):
            a.ingest_raw(b"a-%d" % i)
            b.ingest_raw(b"b-%d" % i)
        a.flush()
        b.flush()

        origins: List[Dict[str, int]] = []
        for node in (a, b):
            events = poll_until(node, 2 * N)
            payloads = [e.payload for e in events]
            assert len(payloads) == len(set(payloads)), "an event arrived twice"
            assert len(payloads) == 2 * N, f"{len(payloads)} of {2 * N} events"
            by_writer: Dict[str, Set[int]] = {"a": set(), "b": set()}
            for e in events:
                by_writer[e.payload[:1].decode()].add(e.origin)
            # Every event of one writer carries that writer's one, nonzero node id.
            assert all(len(ids) == 1 and 0 not in ids for ids in by_writer.values()), by_writer
            origins.append({w: next(iter(ids)) for w, ids in by_writer.items()})

            # The packed page carries the same origins, column and events alike.
            page = node.poll(2 * N)
            packed = node.poll_packed(2 * N)
            assert len(packed) == len(page) == 2 * N
            assert list(packed.origins) == [e.origin for e in page.events]
            assert [e.origin for e in packed.events()] == list(packed.origins)
            assert packed.event(0) == page.events[0]

        # A's events carry A's node id on A and on B alike, and B's carry another one.
        assert origins[0] == origins[1]
        assert origins[0]["a"] != origins[0]["b"]
