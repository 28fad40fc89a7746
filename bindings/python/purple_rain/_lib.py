"""Loads the shared library and the cffi extension over it, and turns statuses into exceptions.

The library comes from `PURPLE_RAIN_LIB` when set, else from the copy inside the package (the
wheel ships it). It is loaded with `RTLD_GLOBAL` before the extension, whose calls resolve
against it; its ABI version must equal the header's the extension was built with.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, NoReturn

from .errors import PurpleRainError


def _library_path() -> str:
    return os.environ.get("PURPLE_RAIN_LIB") or str(Path(__file__).with_name("libpurple_rain.so"))


LIBRARY_PATH = _library_path()
_handle = ctypes.CDLL(LIBRARY_PATH, mode=ctypes.RTLD_GLOBAL)

from ._native import ffi, lib  # noqa: E402  (after the library is loaded)
from ._kinds import BY_CODE  # noqa: E402

if lib.pr_abi_version() != lib.PR_ABI_VERSION:
    raise ImportError(
        f"{LIBRARY_PATH} implements C ABI {lib.pr_abi_version()}, "
        f"this package was built for {lib.PR_ABI_VERSION}"
    )

OK: int = lib.PR_OK


def status_name(code: int) -> str:
    """The library's name of a status, e.g. `"PR_ERR_BACKPRESSURE"`."""
    name: bytes = ffi.string(lib.pr_status_name(code))
    return name.decode()


def error(code: int) -> PurpleRainError:
    """The exception for a failed call's status, with this thread's message."""
    message = ffi.string(lib.pr_last_error_message()).decode("utf-8", "replace")
    cls = BY_CODE.get(code)
    if cls is None:
        return PurpleRainError(message, status=status_name(code), code=code)
    return cls(message)


def fail(code: int) -> NoReturn:
    raise error(code)


def check(code: int) -> None:
    """Raises the exception of a non-OK status."""
    if code:
        raise error(code)


Cdata = Any
"""A cffi pointer or struct (cffi has no static types)."""

__all__ = ["ffi", "lib", "check", "fail", "error", "status_name", "LIBRARY_PATH", "Cdata", "OK"]
