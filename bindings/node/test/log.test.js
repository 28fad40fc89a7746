'use strict'

// PURPLE_RAIN_LOG=<level> makes the library write its log events (failures, recovery, scaling,
// shutdown) to stderr: how a Node host reads them without callbacks. Each case runs in a child
// process, since the library installs its stderr logger once per process.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const script = `
const { EventBus } = require(${JSON.stringify(path.join(__dirname, '..'))})
;(async () => {
  const bus = await EventBus.create({ shards: 2, adapter: { type: 'memory' } })
  await bus.addShards(1)
  await bus.shutdown()
})().catch((e) => { console.error(e); process.exit(1) })
`

function run (level) {
  const env = { ...process.env }
  delete env.PURPLE_RAIN_LOG
  if (level) env.PURPLE_RAIN_LOG = level
  const out = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', timeout: 60000 })
  assert.equal(out.status, 0, out.stderr)
  return out.stderr
}

test('PURPLE_RAIN_LOG=info writes scaling and shutdown events to stderr', () => {
  const stderr = run('info')
  assert.match(stderr, /INFO purple_rain::bus::scaling: scaling: shards added/)
  assert.match(stderr, /INFO purple_rain::bus::lifecycle: shutdown complete/)
})

test('without PURPLE_RAIN_LOG nothing is written', () => {
  assert.doesNotMatch(run(undefined), /purple_rain/)
})
