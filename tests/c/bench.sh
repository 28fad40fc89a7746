#!/usr/bin/env bash
# C ABI benchmark next to its Rust baseline, in one run: builds the release library and the
# baseline example, compiles tests/c/bench.c with -O2, runs the Rust baseline then the C bench.
# Args are passed to both: [ingest_events] [poll_backlog] [repeats].
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release --lib --example ffi_baseline --quiet)
make -s -C "$here" bench
"$CARGO_TARGET_DIR/release/examples/ffi_baseline" "$@"
"$here/build/release/bench" "$@"
