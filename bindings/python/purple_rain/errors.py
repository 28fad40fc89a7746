"""The exception hierarchy: `PurpleRainError` and one subclass per `pr_status` failure kind.

The subclasses (`Backpressure`, `ShuttingDown`, `InvalidCursor`, ...) are generated into
`_kinds.py` from the header's `pr_status` enum when the package is built, so a kind the library
adds appears here without anyone editing a list. A status the package does not know (a newer
library under `PURPLE_RAIN_LIB`) still raises a `PurpleRainError` with the library's name for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .stats import FlushReport


class PurpleRainError(Exception):
    """A call into the library failed.

    `status` is the C status name (e.g. `"PR_ERR_BACKPRESSURE"`), `code` its number and `message`
    the library's detail (`pr_last_error_message()`: which key, byte offset, index or shard).
    """

    status: str = "PR_ERR_UNKNOWN"
    code: int = -1
    accepted: int = 0
    """For a batch ingest (`ingest_packed`, `ingest_many`): events accepted before the failure."""
    report: Optional[FlushReport] = None
    """For `Timeout` from `flush(timeout)`: the undelivered and dropped counts."""

    def __init__(self, message: str, *, status: str | None = None, code: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"
