"""Builds `purple_rain._native`, the cffi extension (API mode) over `include/purple_rain.h`.

The declarations are read from the committed header itself (run through the C preprocessor, then
handed to cffi), so the binding can never disagree with the header it was built against. The
extension does not link `libpurple_rain.so`: `purple_rain._lib` loads the library first with
`RTLD_GLOBAL` (from the wheel, or from `PURPLE_RAIN_LIB`), and the extension's calls resolve
against it. The small C helpers below live in the extension, not in the library: they turn a poll
result into flat arrays in one crossing, which Python cannot do cheaply event by event.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def header_path() -> Path:
    """The header to build against: `PURPLE_RAIN_HEADER`, else the repository's."""
    return Path(os.environ.get("PURPLE_RAIN_HEADER", REPO / "include" / "purple_rain.h"))


def status_kinds(header: str) -> list[tuple[str, int]]:
    """Every `PR_*` status of the header's `pr_status` enum, in number order."""
    body = re.search(r"enum pr_status\b[^{]*\{(.*?)\};", header, re.S)
    if body is None:
        raise RuntimeError("no enum pr_status in the header")
    return [(m[1], int(m[2])) for m in re.finditer(r"\b(PR_\w+)\s*=\s*(\d+)", body[1])]


def cdef_from_header(header: str) -> str:
    """The header's declarations as cffi reads them: comments, includes and conditionals resolved
    by the C preprocessor, integer `#define`s kept as cffi constants."""
    without_includes = "\n".join(
        line for line in header.splitlines() if not line.startswith("#include")
    )
    out = subprocess.run(
        ["cc", "-E", "-P", "-x", "c", "-"],
        input=without_includes,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    defines = re.findall(r"^#define (PR_[A-Z_]+) (\d+)\s*$", header, re.M)
    return out + "".join(f"#define {name} {value}\n" for name, value in defines)


HELPERS_CDEF = """
void prpy_sizes(const pr_poll_result *result, size_t *data_len, size_t *ids_len);
int prpy_packed(const pr_poll_result *result, uint8_t *data, uint32_t *ends, char *ids,
                uint16_t *shards, uint64_t *sequences, uint64_t *timestamps,
                uint64_t *origins);
"""

HELPERS_SOURCE = r"""
#include <string.h>
#include "purple_rain.h"

/* Sizes of the buffers prpy_packed fills: all payload bytes, and all ids with a NUL each. */
static void prpy_sizes(const pr_poll_result *result, size_t *data_len, size_t *ids_len) {
    size_t n = pr_poll_result_len(result), data = 0, ids = 0;
    pr_event_view v;
    for (size_t i = 0; i < n; i++) {
        if (pr_poll_result_event(result, i, &v) != PR_OK) break;
        data += v.payload_len;
        ids += strlen(v.id) + 1;
    }
    *data_len = data;
    *ids_len = ids;
}

/* Copies a page into flat arrays in one crossing: payloads back to back in `data`, event i's
   end offset in ends[i], ids NUL-terminated back to back in `ids`, and each event's shard,
   sequence, timestamp and origin node. The buffers have the sizes prpy_sizes gave. Returns 0, or -1 if an
   offset does not fit 32 bits (a page over 4 GiB). */
static int prpy_packed(const pr_poll_result *result, uint8_t *data, uint32_t *ends, char *ids,
                       uint16_t *shards, uint64_t *sequences, uint64_t *timestamps,
                       uint64_t *origins) {
    size_t n = pr_poll_result_len(result), at = 0, id_at = 0;
    pr_event_view v;
    for (size_t i = 0; i < n; i++) {
        if (pr_poll_result_event(result, i, &v) != PR_OK) return -1;
        if (v.payload_len) memcpy(data + at, v.payload, v.payload_len);
        at += v.payload_len;
        if (at > UINT32_MAX) return -1;
        ends[i] = (uint32_t)at;
        size_t id_len = strlen(v.id) + 1;
        memcpy(ids + id_at, v.id, id_len);
        id_at += id_len;
        shards[i] = v.shard;
        sequences[i] = v.sequence;
        timestamps[i] = v.timestamp_ns;
        origins[i] = v.origin;
    }
    return 0;
}
"""


def make_builder() -> FFI:
    header = header_path()
    ffibuilder = FFI()
    ffibuilder.cdef(cdef_from_header(header.read_text()) + HELPERS_CDEF)
    ffibuilder.set_source(
        "purple_rain._native",
        HELPERS_SOURCE,
        include_dirs=[str(header.parent)],
        extra_compile_args=["-O2"],
        py_limited_api=True,
    )
    return ffibuilder


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
