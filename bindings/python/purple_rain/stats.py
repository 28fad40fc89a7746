"""Bus counters (`pr_stats`) and scaling recommendations (`pr_scaling_decision`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import List

from ._lib import Cdata


@dataclass(frozen=True)
class Stats:
    """Counters of a bus, as `pr_stats` (same names; the header documents each).

    After `flush()` and after `shutdown()`: `events_dispatched + events_dropped ==
    events_ingested`, exactly.
    """

    events_ingested: int
    events_dropped: int
    batches_dispatched: int
    events_dispatched: int
    shutdown_was_lossy: bool
    dropped_evicted: int
    dropped_adapter_fatal: int
    dropped_retry_exhausted: int
    dropped_lost: int
    rejected_backpressure: int
    blocked_waits: int
    retries: int
    events_trimmed: int

    @classmethod
    def from_c(cls, s: Cdata) -> "Stats":
        return cls(**{f.name: getattr(s, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class FlushReport:
    """What a `flush` saw (`pr_flush_report`): `undelivered` events still queued (non-zero only
    on `Timeout`), events `dropped` since the previous flush (each reported once), and `lossy`
    (`dropped > 0`)."""

    undelivered: int
    dropped: int
    lossy: bool


@dataclass(frozen=True)
class ScalingDecision:
    """What `suggest_scaling()` recommends: `action` is `"none"`, `"up"` (add `count` shards) or
    `"down"` (remove `shard_ids`)."""

    action: str
    count: int
    shard_ids: List[int]
