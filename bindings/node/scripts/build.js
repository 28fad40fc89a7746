'use strict'

// Builds the addon with cargo and copies it next to index.js as `purple-rain.node`.
// `node scripts/build.js` builds release; `--debug` builds the dev profile. Honours
// CARGO_TARGET_DIR (else the workspace's `target/`).

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const debug = process.argv.includes('--debug')
const root = path.resolve(__dirname, '..')
const workspace = path.resolve(root, '..', '..')

const cargoArgs = ['build', '-p', 'purple-rain-node']
if (!debug) cargoArgs.push('--release')
const built = spawnSync('cargo', cargoArgs, { cwd: root, stdio: 'inherit' })
if (built.error) {
  console.error(`cannot run cargo: ${built.error.message}`)
  process.exit(1)
}
if (built.status !== 0) process.exit(built.status ?? 1)

const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(workspace, process.env.CARGO_TARGET_DIR)
  : path.join(workspace, 'target')
const file = {
  linux: 'libpurple_rain_node.so',
  darwin: 'libpurple_rain_node.dylib',
  win32: 'purple_rain_node.dll'
}[process.platform] ?? 'libpurple_rain_node.so'
const from = path.join(targetDir, debug ? 'debug' : 'release', file)
const to = path.join(root, 'purple-rain.node')
// Copy to a temporary name and rename, so a running process never sees a half-written file.
fs.copyFileSync(from, `${to}.tmp`)
fs.renameSync(`${to}.tmp`, to)
console.log(`built ${path.relative(process.cwd(), to)} from ${from}`)
