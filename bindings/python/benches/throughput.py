"""Throughput of the Python binding, each next to a pure-Python baseline of the same run:
`collections.deque` append / popleft of the same 100-byte `bytes` objects.

    python bindings/python/benches/throughput.py [events]       (default 1,000,000)

Ingest rows are timed to the end of `flush`, poll rows over the whole backlog page by page,
touching every payload. Prints events/s per operation and the ratio to the baseline. Figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import sys
import time
from array import array
from collections import deque
from typing import Callable

from purple_rain import Bus

SIZE = 100
BATCH = 10_000


def rate(n: int, run: Callable[[], object]) -> float:
    """Best of three runs, in events/s."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return n / best


def new_bus() -> Bus:
    return Bus(
        {
            "shards": 4,
            "ring_capacity": 65536,
            "backpressure": "block",
            "adapter": {"type": "memory", "max_events_per_shard": 10_000_000},
        }
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    payloads = [b"%0100d" % i for i in range(n)]
    assert all(len(p) == SIZE for p in payloads)
    packed = b"".join(payloads)
    ends = array("I", range(SIZE, SIZE * n + 1, SIZE))

    def deque_append() -> None:
        d: deque[bytes] = deque()
        append = d.append
        for p in payloads:
            append(p)

    full: deque[bytes] = deque()

    def deque_popleft() -> None:
        full.extend(payloads)
        popleft = full.popleft
        for _ in range(n):
            popleft()

    rows: list[tuple[str, float, str]] = []
    append_rate = rate(n, deque_append)
    popleft_rate = rate(n, deque_popleft)
    rows.append(("baseline deque.append", append_rate, "append"))
    rows.append(("baseline deque.popleft (per event)", popleft_rate, "popleft"))

    # Ingest: Noop adapter, rings large enough for every event (no back-pressure wait), each
    # run on a new bus made outside the timing; timed from the first call to the end of flush.
    def ingest_run(body: Callable[[Bus], None]) -> float:
        best = float("inf")
        for _ in range(3):
            with Bus({"shards": 4, "ring_capacity": 1 << 18, "backpressure": "block"}) as bus:
                started = time.perf_counter()
                body(bus)
                bus.flush()
                best = min(best, time.perf_counter() - started)
        return n / best

    def ingest_raw(bus: Bus) -> None:
        ingest = bus.ingest_raw
        for p in payloads:
            ingest(p)

    def ingest_raw_cffi(bus: Bus) -> None:
        from purple_rain._lib import lib

        call, handle = lib.pr_ingest_raw, bus._ptr
        for p in payloads:
            call(handle, p, SIZE)

    def ingest_packed(bus: Bus) -> None:
        view = memoryview(packed)
        for start in range(0, n, BATCH):
            count = min(BATCH, n - start)
            chunk_ends = array("I", range(SIZE, SIZE * count + 1, SIZE))
            bus.ingest_packed(view[start * SIZE : start * SIZE + count * SIZE], chunk_ends)

    rows.append(("ingest_raw (one call per event)", ingest_run(ingest_raw), "append"))
    rows.append(("  the bare cffi call, for reference", ingest_run(ingest_raw_cffi), "append"))
    rows.append((f"ingest_packed ({BATCH} per call)", ingest_run(ingest_packed), "append"))

    bus = new_bus()
    bus.ingest_packed(packed, ends)
    bus.flush()

    def poll(limit: int, packed_form: bool) -> Callable[[], None]:
        def run() -> None:
            cursor = None
            got = 0
            while True:
                if packed_form:
                    page = bus.poll_packed(limit, cursor)
                    got += len(page)
                else:
                    p = bus.poll(limit, cursor)
                    for e in p.events:
                        e.payload  # touch each event as a consumer would
                    got += len(p)
                cursor = page.cursor if packed_form else p.cursor
                if not (page.has_more if packed_form else p.has_more):
                    break
            assert got == n, got

        return run

    rows.append(("poll (Event objects, 10000 per page)", rate(n, poll(10_000, False)), "popleft"))
    rows.append(("poll_packed (10000 per page)", rate(n, poll(10_000, True)), "popleft"))
    bus.shutdown()

    base = {"append": append_rate, "popleft": popleft_rate}
    print(f"{n} events of {SIZE} bytes, 4 shards (ingest: Noop adapter; poll: memory adapter)")
    print(f"{'operation':40} {'events/s':>14} {'vs deque':>9}")
    for name, r, against in rows:
        print(f"{name:40} {r:14,.0f} {r / base[against]:8.2f}x")


if __name__ == "__main__":
    main()
