'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { withBus, drain } = require('./helpers')

test('filters pass through, including across pages', async () => {
  await withBus({ shards: 4 }, async (bus) => {
    for (let i = 0; i < 1000; i++) bus.ingest({ kind: i % 3 === 0 ? 'click' : 'view', i, user: { id: i % 10 } })
    bus.ingestRaw('not json at all')
    await bus.flush()
    const clicks = await drain(bus, { limit: 50, filter: { path: 'kind', value: 'click' } })
    assert.equal(clicks.events.length, 334)
    assert.ok(clicks.events.every((e) => JSON.parse(e.payload).kind === 'click'))

    const complex = await drain(bus, {
      filter: { $and: [{ $eq: { path: 'user.id', value: 7 } }, { $not: { path: 'kind', value: 'click' } }] }
    })
    const expected = Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 10 === 7 && i % 3 !== 0)
    assert.deepEqual(complex.events.map((e) => JSON.parse(e.payload).i).sort((a, b) => a - b), expected)

    const some = await drain(bus, { filter: { $in: { path: 'i', value: [1, 2, 999] } } })
    assert.equal(some.events.length, 3)
  })
})

test('timestamp ordering merges shards by (timestampNs, shard, sequence)', async () => {
  await withBus({ shards: 4 }, async (bus) => {
    for (let i = 0; i < 800; i++) bus.ingest({ i })
    await bus.flush()
    const { events } = await drain(bus, { limit: 64, ordering: 'timestamp' })
    assert.equal(events.length, 800)
    for (let k = 1; k < events.length; k++) {
      const a = events[k - 1]
      const b = events[k]
      const ordered = a.timestampNs < b.timestampNs ||
        (a.timestampNs === b.timestampNs && (a.shard < b.shard || (a.shard === b.shard && a.sequence < b.sequence)))
      assert.ok(ordered, `event ${k} out of order`)
    }
    assert.ok(new Set(events.map((e) => e.shard)).size > 1)
  })
})

test('shard selection passes through', async () => {
  await withBus({ shards: 4 }, async (bus) => {
    for (let i = 0; i < 400; i++) bus.ingest({ i })
    await bus.flush()
    const { events } = await drain(bus, { shards: [2] })
    assert.ok(events.length > 0)
    assert.ok(events.every((e) => e.shard === 2))
  })
})

test('a JSON string request is taken as is', async () => {
  await withBus({ shards: 1 }, async (bus) => {
    bus.ingest({ a: 1 })
    await bus.flush()
    const page = await bus.poll('{"limit": 5, "wait_ms": 0}')
    assert.equal(page.events.length, 1)
  })
})
