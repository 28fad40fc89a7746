#!/usr/bin/env bash
# The package as a user outside this repository gets it: `npm pack` (the built addon for this
# platform inside), `npm install --offline <tarball>` into an empty folder, then the quickstart
# (examples/node/quickstart.js, requiring 'purple-rain') run from there, and `tsc` in strict mode
# over examples/node/typed.ts against the installed package's declarations (index.d.ts and the
# generated native.d.ts it imports). Needs `npm run build` first. Ends with "N passed, M failed".
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
unset PURPLE_RAIN_NODE_ADDON

tarball="$(cd "$here" && npm pack --silent --pack-destination "$work" | tail -1)"
listing="$(tar -tzf "$work/$tarball")"
for f in package/package.json package/index.js package/index.d.ts package/native.d.ts package/purple-rain.node; do
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
passed=0
failed=0
if out="$(node quickstart.js 2>&1)" && grep -q "eventsIngested: 5" <<<"$out"; then
  echo "ok   $tarball installs into an empty folder and runs the quickstart"
  passed=$((passed + 1))
else
  printf '%s\n' "$out"
  echo "FAIL quickstart from the installed tarball"
  failed=$((failed + 1))
fi
# The types as an editor sees them: 'purple-rain' resolves through node_modules/purple-rain's
# package.json "types"; only tsc and @types/node come from the repository's dev dependencies.
cp "$root/examples/node/typed.ts" typed.ts
cat >tsconfig.json <<EOF
{
  "compilerOptions": {
    "strict": true, "noEmit": true, "target": "es2022", "module": "commonjs",
    "moduleResolution": "node", "types": ["node"], "typeRoots": ["$here/node_modules/@types"]
  },
  "files": ["typed.ts"]
}
EOF
if out="$("$here/node_modules/.bin/tsc" -p . 2>&1)"; then
  echo "ok   the installed package's declarations type-check examples/node/typed.ts"
  passed=$((passed + 1))
else
  printf '%s\n' "$out"
  echo "FAIL tsc over typed.ts against the installed package"
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
