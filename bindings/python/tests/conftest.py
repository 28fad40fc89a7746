"""Shared fixtures: a memory-adapter bus per test, shut down afterwards."""

from __future__ import annotations

from typing import Iterator

import pytest

from purple_rain import Bus


@pytest.fixture
def bus() -> Iterator[Bus]:
    with Bus({"shards": 4, "adapter": {"type": "memory"}}) as b:
        yield b


def drain(bus: Bus, limit: int = 1000, **kwargs: object) -> list:
    """Every event from the start, page by page, following the cursor."""
    events: list = []
    cursor = None
    while True:
        page = bus.poll(limit, cursor, **kwargs)  # type: ignore[arg-type]
        events.extend(page.events)
        cursor = page.cursor
        if not page.has_more:
            return events
