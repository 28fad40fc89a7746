'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')

test('examples/node/quickstart.js runs and prints its events and stats', () => {
  const example = path.resolve(__dirname, '..', '..', '..', 'examples', 'node', 'quickstart.js')
  const run = spawnSync(process.execPath, [example], { encoding: 'utf8', timeout: 30000 })
  assert.equal(run.status, 0, run.stderr)
  assert.equal(run.stdout.match(/^shard \d+ seq \d+ at \d+ns: /gm).length, 5)
  assert.match(run.stdout, /clicks: 1/)
  assert.match(run.stdout, /packed: 5 events, 70 payload bytes, first \{.*\} \(id \d+-\d+\)/)
  assert.match(run.stdout, /eventsIngested: 5, eventsDispatched: 5, eventsDropped: 0/)
})
