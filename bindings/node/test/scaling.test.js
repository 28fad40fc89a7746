'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { withBus, drain } = require('./helpers')

test('addShards, removeShards and suggestScaling pass through without losing events', async () => {
  await withBus({ shards: 2, scaling: { min_shards: 1, max_shards: 8, auto: false } }, async (bus) => {
    assert.deepEqual(bus.shardIds(), [0, 1])
    for (let i = 0; i < 500; i++) bus.ingest({ i })
    const added = await bus.addShards(2)
    assert.deepEqual(added, [2, 3])
    assert.deepEqual(bus.shardIds(), [0, 1, 2, 3])
    for (let i = 500; i < 1000; i++) bus.ingest({ i })
    await bus.removeShards([0, 2])
    assert.deepEqual(bus.shardIds(), [1, 3])
    for (let i = 1000; i < 1500; i++) bus.ingest({ i })
    await bus.flush()
    const { events } = await drain(bus, { limit: 200 })
    assert.deepEqual(events.map((e) => JSON.parse(e.payload).i).sort((a, b) => a - b), Array.from({ length: 1500 }, (_, i) => i))
    const stats = bus.stats()
    assert.equal(stats.eventsIngested, 1500)
    assert.equal(stats.eventsDispatched + stats.eventsDropped, stats.eventsIngested)
    assert.ok(stats.shards.some((s) => s.retired))

    const advice = await bus.suggestScaling()
    assert.ok(['scaleUp', 'scaleDown', 'none'].includes(advice.action))
    assert.equal(typeof advice.count, 'number')
    assert.ok(Array.isArray(advice.shards))
  })
})

test('stats are plain numbers and balance after flush', async () => {
  await withBus({ shards: 2 }, async (bus) => {
    for (let i = 0; i < 100; i++) bus.ingestRaw('x')
    await bus.flush()
    const stats = bus.stats()
    for (const key of ['eventsIngested', 'eventsDropped', 'batchesDispatched', 'eventsDispatched', 'droppedEvicted',
      'droppedAdapterFatal', 'droppedRetryExhausted', 'droppedLost', 'rejectedBackpressure', 'blockedWaits', 'retries',
      'eventsTrimmed']) {
      assert.equal(typeof stats[key], 'number', key)
    }
    assert.equal(typeof stats.shutdownWasLossy, 'boolean')
    assert.equal(stats.eventsIngested, 100)
    assert.equal(stats.eventsDispatched, 100)
    assert.equal(stats.shards.length, 2)
    assert.equal(stats.shards.reduce((n, s) => n + s.eventsIngested, 0), 100)
  })
})
