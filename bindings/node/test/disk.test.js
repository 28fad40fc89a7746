'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { EventBus } = require('..')
const { drain, rejection } = require('./helpers')

test('disk: events and a kept cursor survive closing and reopening the bus', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'purple-rain-node-disk-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const config = { shards: 4, adapter: { type: 'disk', dir } }
  const seen = new Map()
  const count = (events) => {
    for (const e of events) {
      const { i } = JSON.parse(e.payload.toString())
      seen.set(i, (seen.get(i) ?? 0) + 1)
    }
  }

  let bus = await EventBus.create(config)
  for (let i = 0; i < 1000; i++) bus.ingest({ i })
  await bus.flush()
  const first = await drain(bus, { limit: 300 })
  count(first.events)
  const locked = await rejection(EventBus.create(config))
  assert.equal(locked.code, 'DISK_LOCKED')
  assert.match(locked.message, /pid \d+/)
  await bus.shutdown()

  bus = await EventBus.create(config)
  try {
    for (let i = 1000; i < 1500; i++) bus.ingest({ i })
    await bus.flush()
    const after = await drain(bus, { limit: 300, from: first.cursor })
    assert.equal(after.events.length, 500, 'only what was ingested after reopening')
    count(after.events)
  } finally {
    await bus.shutdown()
  }
  assert.equal(seen.size, 1500)
  for (const [i, times] of seen) assert.equal(times, 1, `event ${i}`)
})
