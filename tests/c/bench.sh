#!/usr/bin/env bash
# C ABI benchmark next to its Rust baseline, in one run: builds the release library and the
# baseline (benches/ffi_baseline.rs), compiles tests/c/bench.c with -O2, then alternates the Rust baseline and the
# C bench ROUNDS times (default 3; the machine is shared, so alternating keeps load spikes from
# favouring one side) and prints the best of each metric with C/Rust cost ratios.
# Args are passed to both: [ingest_events] [poll_backlog] [repeats].
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release --lib --quiet && cargo bench --bench ffi_baseline --no-run --quiet)
make -s -C "$here" bench
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for _ in $(seq "${ROUNDS:-3}"); do
  (cd "$root" && cargo bench --quiet --bench ffi_baseline -- "$@") | tee -a "$out"
  "$here/build/release/bench" "$@" | tee -a "$out"
done
echo "--- best of ${ROUNDS:-3} rounds (ns/event; ratio = C cost / Rust cost) ---"
awk '
  { key = $1 " " $2; if ($3 == "(copy)" || $3 == "(shared)") key = key " " $3
    for (i = 1; i <= NF; i++) if ($i == "events/s") rate = $(i - 1)
    if (rate > best[key]) best[key] = rate }
  END {
    ns = 1e9
    rc = ns / best["rust ingest_raw (copy)"]; rs = ns / best["rust ingest_raw (shared)"]
    rp = ns / best["rust poll"]
    printf "rust ingest_raw (copy)    %7.1f   (what pr_ingest_raw must do: copy the caller buffer)\n", rc
    printf "rust ingest_raw (shared)  %7.1f   (no copy; only Rust callers can)\n", rs
    split("pr_ingest_raw pr_ingest_raw_batch pr_ingest_raw_packed", names, " ")
    for (i = 1; i <= 3; i++) {
      c = ns / best["c " names[i]]
      printf "c %-23s %7.1f   %.2fx copy, %.2fx shared  (%.1fM events/s)\n", names[i], c, c / rc, c / rs, best["c " names[i]] / 1e6
    }
    c = ns / best["c pr_poll"]
    printf "rust poll                 %7.1f   (%.1fM events/s)\n", rp, best["rust poll"] / 1e6
    printf "c pr_poll (views)         %7.1f   %.2fx  (%.1fM events/s)\n", c, c / rp, best["c pr_poll"] / 1e6
  }' "$out"
