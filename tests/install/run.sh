#!/usr/bin/env bash
# Installs the library into a temporary prefix with scripts/install.sh, then checks it as a user
# outside this repository would see it:
#   - the layout, and the soname carrying the major version (readelf -d, ldd);
#   - the shared library exports pr_* symbols only (nm -D: no Rust, std or tokio symbols);
#   - examples/c/quickstart.c, copied out of the repository, builds with `pkg-config` alone,
#     dynamically and statically (the .pc's Libs.private), and runs;
#   - the Go example builds against the prefix through the package's `#cgo pkg-config`, with
#     PKG_CONFIG_PATH naming the prefix and nothing else, and runs.
# Ends with "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

passed=0
failed=0
check() { # label, command...
  local label="$1"; shift
  local out
  if out="$("$@" 2>&1)"; then
    echo "ok   $label"
    passed=$((passed + 1))
  else
    printf '%s\n' "$out" | sed 's/^/     /'
    echo "FAIL $label"
    failed=$((failed + 1))
  fi
}

if ! "$root/scripts/install.sh" --prefix "$prefix"; then
  echo "0 passed, 1 failed"
  exit 1
fi
lib="$prefix/lib"
version="$(cd "$root" && cargo pkgid -p purple-rain | sed 's/.*[#@]//')"
major="${version%%.*}"
export PKG_CONFIG_PATH="$lib/pkgconfig"

layout() {
  [ -f "$prefix/include/purple_rain.h" ] && [ -f "$lib/libpurple_rain.a" ] &&
    [ -f "$lib/libpurple_rain.so.$version" ] &&
    [ "$(readlink "$lib/libpurple_rain.so.$major")" = "libpurple_rain.so.$version" ] &&
    [ "$(readlink "$lib/libpurple_rain.so")" = "libpurple_rain.so.$major" ]
}
check "layout: header, static lib, libpurple_rain.so.$version with .so.$major and .so links" layout

soname() {
  readelf -d "$lib/libpurple_rain.so.$version" | grep -F "Library soname: [libpurple_rain.so.$major]"
}
check "readelf -d: soname libpurple_rain.so.$major" soname

# Defined dynamic symbols (undefined ones are the library's imports from libc).
exports_only_pr() {
  local all others
  all="$(nm -D --defined-only "$lib/libpurple_rain.so.$version" | awk '{print $3}')"
  others="$(printf '%s\n' "$all" | grep -v '^pr_' || true)"
  [ -n "$all" ] && [ -z "$others" ] || { echo "not pr_*: $others"; return 1; }
  # Every function the header declares is exported.
  local declared missing=""
  declared="$(grep -oE '\bpr_[a-z0-9_]+\(' "$prefix/include/purple_rain.h" | tr -d '(' | sort -u)"
  for f in $declared; do
    grep -qx "$f" <<<"$all" || missing="$missing $f"
  done
  [ -z "$missing" ] || { echo "declared but not exported:$missing"; return 1; }
}
check "nm -D: only pr_* exported, every declared function among them" exports_only_pr

check "pkg-config --modversion = $version (installed and the Go binding's development .pc)" \
  bash -c "[ \"\$(pkg-config --modversion purple_rain)\" = '$version' ] &&
    [ \"\$(PKG_CONFIG_PATH='$root/bindings/go/pkgconfig' pkg-config --modversion purple_rain)\" = '$version' ]"

# The C quickstart, away from the repository's include/.
cp "$root/examples/c/quickstart.c" "$work/"
c_dynamic() {
  cd "$work" &&
    cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags purple_rain) quickstart.c \
      -o quickstart $(pkg-config --libs purple_rain) &&
    ldd ./quickstart | grep -F "libpurple_rain.so.$major => $lib/libpurple_rain.so.$major" &&
    ./quickstart
}
check "C quickstart: built with pkg-config only, runs against the prefix (ldd)" c_dynamic

c_static() {
  cd "$work" &&
    cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags purple_rain) quickstart.c \
      -o quickstart_static "$lib/libpurple_rain.a" \
      $(pkg-config --static --libs-only-l purple_rain | sed 's/-lpurple_rain//') &&
    ! ldd ./quickstart_static | grep purple_rain &&
    ./quickstart_static
}
check "C quickstart: linked statically with the .pc's Libs.private, runs" c_static

# The Go example against the prefix: the package's flags come from `#cgo pkg-config`. Its own
# build cache: Go's cache key does not include pkg-config's output, so a package built earlier
# against this checkout's .pc would be reused (and this prefix's build would be reused later).
go_example() {
  command -v go >/dev/null || { echo "go not installed"; return 1; }
  cp -r "$root/examples/go" "$work/go" &&
    sed -i "s|=> ../../bindings/go|=> $root/bindings/go|" "$work/go/go.mod" &&
    cd "$work/go" &&
    GOPROXY=off GOFLAGS=-mod=mod CGO_CFLAGS= CGO_LDFLAGS= GOCACHE="$work/gocache" \
      go build -o example . &&
    ldd ./example | grep -F "libpurple_rain.so.$major => $lib/libpurple_rain.so.$major" &&
    ./example
}
check "Go example: built through #cgo pkg-config against the prefix, runs" go_example

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
