"""Purple Rain, a sharded event bus: the Python binding over its C ABI (cffi, API mode).

>>> from purple_rain import Bus
>>> with Bus({"adapter": {"type": "memory"}}) as bus:
...     bus.ingest_raw(b'{"kind":"click"}')
...     report = bus.flush()
...     print(bus.poll(10).events[0].payload)
b'{"kind":"click"}'

Errors are `PurpleRainError` subclasses, one per C `pr_status` kind (`Backpressure`,
`ShuttingDown`, `InvalidCursor`, `Config`, ...), generated from the header at build time.
"""

from ._kinds import *  # noqa: F401,F403  (one class per pr_status kind)
from ._kinds import __all__ as _kind_names
from ._lib import LIBRARY_PATH, ffi, lib
from .bus import Bus, Subscription
from .errors import PurpleRainError
from .page import Event, PackedPage, Page
from .stats import FlushReport, ScalingDecision, Stats

__version__: str = ffi.string(lib.pr_version()).decode()
"""The library's version (`pr_version()`)."""

__all__ = [
    "Bus",
    "Subscription",
    "Event",
    "Page",
    "PackedPage",
    "Stats",
    "FlushReport",
    "ScalingDecision",
    "PurpleRainError",
    "LIBRARY_PATH",
    *_kind_names,
]
