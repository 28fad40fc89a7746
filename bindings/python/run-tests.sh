#!/usr/bin/env bash
# The Python binding's tests: builds the library and the wheel, installs the wheel into a
# virtualenv, then runs pytest (with the fresh-venv wheel test and the Redis and JetStream round
# trips) and mypy --strict over the package and the example.
#
#   PURPLE_RAIN_PROFILE  cargo profile of the library, "release" (default) or "debug"; CI uses
#                        "debug", whose all-features build the Rust tests already made.
#   CARGO_TARGET_DIR     as for cargo; the venv and the wheel go there too.
set -euo pipefail
cd "$(dirname "$0")"
repo="$(cd ../.. && pwd)"
target="$(realpath -m "${CARGO_TARGET_DIR:-$repo/target}")"
profile="${PURPLE_RAIN_PROFILE:-release}"
# The library with the Redis and JetStream adapters. In debug, built as `cargo test --workspace
# --all-features` builds it, so that CI reuses those artifacts instead of compiling anew.
if [ "$profile" = release ]; then
  (cd "$repo" && cargo build --release --lib --features redis,jetstream)
else
  (cd "$repo" && cargo build --workspace --lib --all-features)
fi

venv="$target/python-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt

rm -rf "$target/python-wheel"
PURPLE_RAIN_LIB="$target/$profile/libpurple_rain.so" \
  "$venv/bin/pip" wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
  -w "$target/python-wheel" .
wheel="$(ls "$target"/python-wheel/purple_rain-*.whl)"
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"

PURPLE_RAIN_WHEEL="$wheel" PURPLE_RAIN_BROKERS="${PURPLE_RAIN_BROKERS:-1}" \
  timeout 600 "$venv/bin/pytest" -q -p no:cacheprovider tests
"$venv/bin/mypy" --strict --no-incremental purple_rain benches "$repo/examples/python/quickstart.py"
