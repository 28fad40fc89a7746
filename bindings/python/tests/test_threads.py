"""Threads and asyncio: calls release the GIL, so waits inside the library never stall Python."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

from conftest import drain

from purple_rain import Bus, Page


def test_long_poll_is_woken_by_an_ingest_from_another_thread(bus: Bus) -> None:
    # The poll waits inside the library for up to 30 s. This thread can only run (and ingest)
    # while it waits if the call released the GIL; the ingest must then end the wait early.
    result: list[Page] = []
    poller = threading.Thread(target=lambda: result.append(bus.poll(10, wait=30.0)))
    started = time.monotonic()
    poller.start()
    spins = 0
    while spins < 1000:  # pure Python work while the poll is parked
        spins += 1
    bus.ingest_raw(b"wake")
    poller.join(timeout=20)
    assert not poller.is_alive()
    assert [e.payload for e in result[0]] == [b"wake"]
    assert time.monotonic() - started < 20


def test_shutdown_ends_a_long_poll(bus: Bus) -> None:
    from purple_rain import ShuttingDown

    errors: list[BaseException] = []

    def poll() -> None:
        try:
            bus.poll(10, wait=30.0)
        except ShuttingDown as e:
            errors.append(e)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.1)  # let it park; the assertion holds whether or not it had
    bus.shutdown()
    poller.join(timeout=20)
    assert not poller.is_alive() and len(errors) == 1


def test_eight_producers_while_a_consumer_polls() -> None:
    producers, per_producer = 8, 2000
    with Bus({"shards": 4, "backpressure": "block", "adapter": {"type": "memory"}}) as bus:
        stop = threading.Event()
        seen: list[bytes] = []
        last_seq: dict[int, int] = {}
        errors: list[str] = []

        def consume() -> None:
            cursor = None
            while True:
                done = stop.is_set()  # read before polling: a poll after it sees everything
                page = bus.poll(500, cursor, wait=0.05)
                for e in page:
                    if e.sequence <= last_seq.get(e.shard, -1):
                        errors.append(f"shard {e.shard} went back to {e.sequence}")
                    last_seq[e.shard] = e.sequence
                    seen.append(e.payload)
                cursor = page.cursor
                if done and not page.has_more:
                    return

        def produce(p: int) -> None:
            for i in range(per_producer):
                bus.ingest_raw(b"%d:%d" % (p, i))

        consumer = threading.Thread(target=consume)
        consumer.start()
        threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        bus.flush()
        stop.set()
        consumer.join(timeout=60)
        assert not consumer.is_alive()
        assert errors == []
        counts = Counter(seen)
        assert len(seen) == producers * per_producer  # nothing skipped
        assert max(counts.values()) == 1  # nothing repeated
        s = bus.stats()
        assert s.events_ingested == producers * per_producer
        assert s.events_dispatched + s.events_dropped == s.events_ingested


def test_concurrent_flush_poll_and_stats_from_many_threads(bus: Bus) -> None:
    def work(n: int) -> None:
        for i in range(200):
            bus.ingest_raw(b"%d-%d" % (n, i))
            if i % 50 == 0:
                bus.flush()
                bus.stats()
                bus.poll(10)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bus.flush()
    assert len(drain(bus)) == 1200


def test_apoll_does_not_block_the_event_loop(bus: Bus) -> None:
    async def main() -> tuple[Page, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        tick_task = asyncio.create_task(ticker())
        poll_task = asyncio.create_task(bus.apoll(10, wait=30.0))
        while ticks < 10:  # the loop keeps running while the poll waits in its thread
            await asyncio.sleep(0.005)
        bus.ingest_raw(b"async")
        page = await asyncio.wait_for(poll_task, timeout=20)
        tick_task.cancel()
        return page, ticks

    page, ticks = asyncio.run(main())
    assert [e.payload for e in page] == [b"async"] and ticks >= 10


def test_asubscribe_ends_at_shutdown(bus: Bus) -> None:
    async def main() -> list[bytes]:
        for i in range(5):
            bus.ingest_raw(b"%d" % i)
        await bus.aflush()
        got: list[bytes] = []
        async for e in bus.asubscribe(wait=0.05):
            got.append(e.payload)
            if len(got) == 5:
                await bus.ashutdown()
        return got

    assert sorted(asyncio.run(main())) == [b"%d" % i for i in range(5)]
