#!/usr/bin/env bash
# The package as a user outside this repository gets it: `npm pack` (the built addon for this
# platform inside), `npm install --offline <tarball>` into an empty folder, then the quickstart
# (examples/node/quickstart.js, requiring 'purple-rain') run from there. Needs `npm run build`
# first. Ends with "N passed, M failed".
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
unset PURPLE_RAIN_NODE_ADDON

tarball="$(cd "$here" && npm pack --silent --pack-destination "$work" | tail -1)"
listing="$(tar -tzf "$work/$tarball")"
for f in package/package.json package/index.js package/index.d.ts package/purple-rain.node; do
  grep -qx "$f" <<<"$listing" || { echo "FAIL $tarball lacks $f"; echo "0 passed, 1 failed"; exit 1; }
done
mkdir "$work/app"
cd "$work/app"
npm init -y >/dev/null
npm install --offline --no-audit --no-fund "$work/$tarball" >/dev/null
sed "s|require('../../bindings/node')|require('purple-rain')|" "$root/examples/node/quickstart.js" >quickstart.js
grep -q "require('purple-rain')" quickstart.js
# Nothing of the repository on the module path: the package resolves inside node_modules.
resolved="$(node -e "console.log(require.resolve('purple-rain'))")"
[[ "$resolved" == "$work/app/node_modules/purple-rain/index.js" ]] || { echo "FAIL resolved $resolved"; exit 1; }
if out="$(node quickstart.js 2>&1)" && grep -q "eventsIngested: 5" <<<"$out"; then
  echo "ok   $tarball installs into an empty folder and runs the quickstart"
  echo "1 passed, 0 failed"
else
  printf '%s\n' "$out"
  echo "FAIL quickstart from the installed tarball"
  echo "0 passed, 1 failed"
  exit 1
fi
