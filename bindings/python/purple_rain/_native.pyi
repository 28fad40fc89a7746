# The cffi extension built by _ffi_build.py; cffi gives it no static types.
from typing import Any

ffi: Any
lib: Any
