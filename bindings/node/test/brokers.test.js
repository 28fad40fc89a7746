'use strict'

// The addon is built with the broker adapters that index.d.ts declares (issue 16, item 11):
// a Redis and a JetStream bus round-trip through the JSON config against the servers the test
// command starts (127.0.0.1:6379, 127.0.0.1:4222).

const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { EventBus } = require('..')
const { drain } = require('./helpers')

const unique = () => crypto.randomBytes(6).toString('hex')

const adapters = {
  redis: () => ({ type: 'redis', url: 'redis://127.0.0.1:6379', stream_prefix: `prnode_${unique()}` }),
  jetstream: () => ({ type: 'jetstream', url: 'nats://127.0.0.1:4222', stream_prefix: `prnode_${unique()}` })
}

for (const [name, adapter] of Object.entries(adapters)) {
  test(`${name}: the addon has the adapter and round-trips every event once`, async () => {
    const bus = await EventBus.create({ shards: 2, adapter: adapter() })
    try {
      for (let i = 0; i < 200; i++) bus.ingest({ i })
      const report = await bus.flush()
      assert.equal(report.lossy, false)
      const { events } = await drain(bus, { limit: 64 })
      const seen = events.map((e) => JSON.parse(e.payload.toString()).i).sort((a, b) => a - b)
      assert.deepEqual(seen, Array.from({ length: 200 }, (_, i) => i))
    } finally {
      await bus.shutdown()
    }
  })
}
