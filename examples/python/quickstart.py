"""Purple Rain from Python: ingest 100,000 events, then read them back page by page.

Run: pip install the wheel (see bindings/python/README.md), then `python quickstart.py`.
"""

from __future__ import annotations

import json
import time
from array import array

from purple_rain import Backpressure, Bus


def main() -> None:
    config = {"shards": 4, "backpressure": "block", "adapter": {"type": "memory"}}
    with Bus(config) as bus:
        # One event at a time: JSON objects, or raw bytes routed by a key.
        bus.ingest({"user": 7, "kind": "click"})
        bus.ingest_raw(b'{"user":8,"kind":"view"}', key=b"user-8")

        # Many events in one call: one buffer plus the end offset of each event.
        events = [json.dumps({"user": i % 100, "kind": "view", "n": i}).encode() for i in range(100_000)]
        ends = array("I")
        total = 0
        for e in events:
            total += len(e)
            ends.append(total)
        started = time.perf_counter()
        try:
            bus.ingest_packed(b"".join(events), ends)
        except Backpressure as err:  # in "drop_newest" mode (the default), when the rings are full
            print(f"accepted {err.accepted} before the rings filled")
        bus.flush()
        print(f"ingested {bus.stats().events_ingested} events in {time.perf_counter() - started:.3f}s")

        # Read everything back, page by page: the cursor never repeats or skips an event.
        cursor, read = None, 0
        while True:
            page = bus.poll(10_000, cursor)
            read += len(page)
            cursor = page.cursor
            if not page.has_more:
                break
        print(f"polled {read} events")

        # A filtered read: only clicks.
        clicks = bus.poll(100, filter={"path": "kind", "value": "click"})
        print("clicks:", [json.loads(e.payload) for e in clicks])

        stats = bus.stats()
        assert stats.events_dispatched + stats.events_dropped == stats.events_ingested
    print("final:", bus.stats())


if __name__ == "__main__":
    main()
