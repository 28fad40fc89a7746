#!/usr/bin/env bash
# Go binding benchmarks next to the C ABI's and a pure-Go channel baseline, in one run: builds
# the release library and tests/c/bench, then alternates the C bench and
# `go test -bench . -run '^$'` ROUNDS times (default 3; the machine is shared, so alternating
# keeps load spikes from favouring one side) and prints the best events/s of each, with the
# Go/C and Go/baseline ratios. BENCHTIME (default 1s) is passed to -benchtime.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
if [[ "$CARGO_TARGET_DIR" != "$root/target" ]]; then
  echo "the Go package links $root/target/release; unset CARGO_TARGET_DIR" >&2
  exit 1
fi
export PKG_CONFIG_PATH="$here/pkgconfig" # the package's cgo flags: this checkout's build
(cd "$root" && cargo build --release --lib --quiet)
make -s -C "$root/tests/c" bench
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for _ in $(seq "${ROUNDS:-3}"); do
  "$root/tests/c/build/release/bench" 2000000 1000000 1 | tee -a "$out"
  (cd "$here" && go test -bench . -run '^$' -benchtime "${BENCHTIME:-1s}") | grep '^Benchmark' | tee -a "$out"
done
echo "--- best of ${ROUNDS:-3} rounds (events/s) ---"
awk '
  /^c / { if ($3 + 0 > best["c " $2]) best["c " $2] = $3 + 0 }
  /^Benchmark/ {
    name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
    for (i = 1; i <= NF; i++) if ($i == "events/s") rate = $(i - 1) + 0
    if (rate > best[name]) best[name] = rate
  }
  function line(label, v, ref, refname) {
    if (ref > 0) printf "%-28s %8.2fM  %5.2fx %s\n", label, v / 1e6, v / ref, refname
    else printf "%-28s %8.2fM\n", label, v / 1e6
  }
  END {
    base = best["BaselineChannel"]
    line("go baseline: chan <- []byte", base, 0, "")
    line("go baseline: chan <- batch", best["BaselineChannelBatch"], 0, "")
    line("go IngestRaw", best["IngestRaw"], best["c pr_ingest_raw"], "of C pr_ingest_raw")
    line("go IngestRawParallel", best["IngestRawParallel"], best["c pr_ingest_raw"], "of C pr_ingest_raw")
    line("go IngestRawBatch", best["IngestRawBatch"], best["c pr_ingest_raw_packed"], "of C pr_ingest_raw_packed")
    line("go IngestPacked", best["IngestPacked"], best["c pr_ingest_raw_packed"], "of C pr_ingest_raw_packed")
    line("go Poll", best["Poll"], best["c pr_poll"], "of C pr_poll")
    line("go PollInto", best["PollInto"], best["c pr_poll"], "of C pr_poll")
    printf "vs the channel baseline: IngestRaw %.3fx, IngestRawBatch %.3fx, Poll %.3fx\n",
      best["IngestRaw"] / base, best["IngestRawBatch"] / base, best["Poll"] / base
  }' "$out"
