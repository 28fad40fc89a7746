#!/usr/bin/env bash
# Builds the cdylib (debug), then compiles the C tests with gcc -Wall -Wextra -Werror and runs
# them twice: plain, and under AddressSanitizer (+UBSan) with the Rust library loaded.
# PURPLE_RAIN_VALGRIND=1 adds a valgrind memcheck pass (zero errors, no definite leaks).
# The C and C++ quickstarts are built (-Werror) and run too.
# Ends with "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

(cd "$root" && cargo build --lib --quiet) || { echo "0 passed, 1 failed"; exit 1; }
make -s -C "$here" PROFILE=debug all asan || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
run() { # label, command...
  local label="$1"; shift
  local out
  out="$("$@" 2>&1)"
  local rc=$?
  printf '%s\n' "$out" | sed "s/^/[$label] /"
  local result p f
  result="$(printf '%s\n' "$out" | grep '^RESULT ' | tail -1)"
  if [[ -z "$result" ]]; then
    echo "[$label] crashed or did not finish (exit $rc)"
    failed=$((failed + 1))
    return
  fi
  read -r _ p f <<<"$result"
  passed=$((passed + p))
  failed=$((failed + f))
  if [[ $rc -ne 0 && $f -eq 0 ]]; then
    echo "[$label] exited $rc (sanitizer report above)"
    failed=$((failed + 1))
  fi
}

build="$here/build/debug"
for t in test_api test_threads; do
  run "$t" "$build/$t"
done
# detect_leaks: the library's runtime lives for the whole process by design (reachable, not
# leaked); LeakSanitizer only reports unreachable blocks, so real leaks still fail.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=23"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
for t in test_api test_threads; do
  run "asan $t" "$build/asan/$t"
done
unset ASAN_OPTIONS UBSAN_OPTIONS

# The quickstarts double as a check that the header compiles as C11 and C++17 with -Werror.
example() { # name, binary
  if make -s -C "$root/examples/c" PROFILE=debug all >/dev/null && "$2" >/dev/null; then
    echo "[examples] ok   $1"
    passed=$((passed + 1))
  else
    echo "[examples] FAIL $1"
    failed=$((failed + 1))
  fi
}
example quickstart.c "$root/examples/c/build/debug/quickstart"
# PURPLE_RAIN_LOG=info: the library's log events on stderr (the callback-free way C reads them).
if PURPLE_RAIN_LOG=info "$root/examples/c/build/debug/quickstart" 2>&1 >/dev/null | grep "shutdown complete" >/dev/null; then
  echo "[examples] ok   PURPLE_RAIN_LOG=info writes log events to stderr"
  passed=$((passed + 1))
else
  echo "[examples] FAIL PURPLE_RAIN_LOG=info wrote no shutdown event to stderr"
  failed=$((failed + 1))
fi
example quickstart.cpp "$root/examples/c/build/debug/quickstart_cpp"
if [[ "${PURPLE_RAIN_VALGRIND:-0}" == 1 ]] && command -v valgrind >/dev/null; then
  for t in test_api test_threads; do
    run "valgrind $t" valgrind -q --error-exitcode=1 --leak-check=full \
      --errors-for-leak-kinds=definite --show-leak-kinds=definite "$build/$t"
  done
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
