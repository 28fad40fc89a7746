#!/usr/bin/env bash
# Installs the C library the way a system library is installed, in the layout cargo-c's
# `cargo cinstall` produces (see README.md, "C", for why this script and not cargo-c):
#
#   PREFIX/include/purple_rain.h
#   PREFIX/lib/libpurple_rain.so.X.Y.Z      soname libpurple_rain.so.X (X = the crate's major)
#   PREFIX/lib/libpurple_rain.so.X -> libpurple_rain.so.X.Y.Z
#   PREFIX/lib/libpurple_rain.so   -> libpurple_rain.so.X   (for -lpurple_rain at link time)
#   PREFIX/lib/libpurple_rain.a
#   PREFIX/lib/pkgconfig/purple_rain.pc
#
# Usage: scripts/install.sh [--prefix DIR] [--libdir DIR] [--includedir DIR]
#   --prefix defaults to /usr/local, --libdir to PREFIX/lib, --includedir to PREFIX/include.
#   DESTDIR=/staging is prepended to every path written (packaging), not to the .pc's paths.
#   CARGO_TARGET_DIR is honoured.
#
# The soname is set when the shared library is linked (-Wl,-soname), by relinking the crate's
# cdylib with `cargo rustc`; the next plain `cargo build` of the library relinks it without one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix=/usr/local
libdir=
includedir=
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#*=}"; shift ;;
    --libdir) libdir="$2"; shift 2 ;;
    --libdir=*) libdir="${1#*=}"; shift ;;
    --includedir) includedir="$2"; shift 2 ;;
    --includedir=*) includedir="${1#*=}"; shift ;;
    *) echo "usage: $0 [--prefix DIR] [--libdir DIR] [--includedir DIR]" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
libdir="${libdir:-$prefix/lib}"
includedir="${includedir:-$prefix/include}"
destdir="${DESTDIR:-}"

cd "$root"
version="$(cargo pkgid -p purple-rain | sed 's/.*[#@]//')"
major="${version%%.*}"
soname="libpurple_rain.so.$major"
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")"

# Both library kinds in one compilation; the link argument only reaches the shared library.
cargo rustc --release --lib --crate-type cdylib,staticlib --quiet -- \
  -C "link-arg=-Wl,-soname,$soname"

install -d "$destdir$libdir/pkgconfig" "$destdir$includedir"
install -m 0644 include/purple_rain.h "$destdir$includedir/purple_rain.h"
install -m 0755 "$target_dir/release/libpurple_rain.so" "$destdir$libdir/libpurple_rain.so.$version"
ln -sf "libpurple_rain.so.$version" "$destdir$libdir/$soname"
ln -sf "$soname" "$destdir$libdir/libpurple_rain.so"
install -m 0644 "$target_dir/release/libpurple_rain.a" "$destdir$libdir/libpurple_rain.a"
sed -e "s|@PREFIX@|$prefix|" -e "s|@LIBDIR@|$libdir|" -e "s|@INCLUDEDIR@|$includedir|" \
  -e "s|@VERSION@|$version|" scripts/purple_rain.pc.in > "$destdir$libdir/pkgconfig/purple_rain.pc"
chmod 0644 "$destdir$libdir/pkgconfig/purple_rain.pc"
echo "installed purple_rain $version into $destdir$prefix (soname $soname)"
