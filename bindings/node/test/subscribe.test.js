'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { memoryBus, withBus } = require('./helpers')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

test('subscribe receives events ingested after it started, in order per shard', async () => {
  await withBus({ shards: 2 }, async (bus) => {
    const received = []
    const done = (async () => {
      for await (const event of bus.subscribe({ waitMs: 200 })) {
        received.push(JSON.parse(event.payload).i)
        if (received.length === 300) break
      }
    })()
    await sleep(30)
    for (let i = 0; i < 300; i++) {
      bus.ingest({ i })
      if (i % 50 === 0) await sleep(5)
    }
    await done
    assert.deepEqual([...received].sort((a, b) => a - b), Array.from({ length: 300 }, (_, i) => i))
  })
})

test('subscribe ends (done) when the bus shuts down, even while parked in a long poll', async () => {
  const bus = await memoryBus()
  bus.ingest({ first: true })
  const seen = []
  const started = Date.now()
  const consumer = (async () => {
    for await (const event of bus.subscribe({ waitMs: 10000 })) seen.push(event)
    return 'ended'
  })()
  await sleep(100)
  await bus.shutdown()
  assert.equal(await consumer, 'ended')
  assert.equal(seen.length, 1)
  assert.ok(Date.now() - started < 5000, 'ended at shutdown, not at the poll deadline')
})

test('break leaves the loop, return() ends the iterator, and the cursor resumes', async () => {
  await withBus({ shards: 1 }, async (bus) => {
    for (let i = 0; i < 10; i++) bus.ingest({ i })
    await bus.flush()
    // limit 5: pages of five, so breaking after the fifth event is a page boundary.
    const sub = bus.subscribe({ limit: 5, waitMs: 50 })
    const first = []
    for await (const event of sub) {
      first.push(JSON.parse(event.payload).i)
      if (first.length === 5) break
    }
    assert.deepEqual(first, [0, 1, 2, 3, 4])
    assert.deepEqual(await sub.next(), { value: undefined, done: true })
    assert.equal(typeof sub.cursor, 'string')

    const rest = []
    for await (const event of bus.subscribe({ from: sub.cursor, waitMs: 50 })) {
      rest.push(JSON.parse(event.payload).i)
      if (rest.length === 5) break
    }
    assert.deepEqual(rest, [5, 6, 7, 8, 9])
  })
})

test('breaking inside a page resumes at-least-once from the last full page', async () => {
  await withBus({ shards: 1 }, async (bus) => {
    for (let i = 0; i < 8; i++) bus.ingest({ i })
    await bus.flush()
    const sub = bus.subscribe({ limit: 4, waitMs: 50 })
    const got = []
    for await (const event of sub) {
      got.push(JSON.parse(event.payload).i)
      if (got.length === 6) break // in the middle of the second page [4..7]
    }
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5])
    const again = []
    for await (const event of bus.subscribe({ from: sub.cursor, limit: 4, waitMs: 50 })) {
      again.push(JSON.parse(event.payload).i)
      if (again.length === 4) break
    }
    // The cursor stood after the first page: the partly read page comes again, nothing is lost.
    assert.deepEqual(again, [4, 5, 6, 7])
  })
})

test('a subscription filter and ordering pass through', async () => {
  await withBus({ shards: 3 }, async (bus) => {
    for (let i = 0; i < 60; i++) bus.ingest({ even: i % 2 === 0, i })
    await bus.flush()
    const got = []
    for await (const event of bus.subscribe({ filter: { path: 'even', value: true }, ordering: 'timestamp', waitMs: 50 })) {
      got.push(event)
      if (got.length === 30) break
    }
    assert.ok(got.every((e) => JSON.parse(e.payload).even === true))
    for (let k = 1; k < got.length; k++) assert.ok(got[k - 1].timestampNs <= got[k].timestampNs)
  })
})

test('several subscriptions run side by side', async () => {
  await withBus({ shards: 2 }, async (bus) => {
    const consume = async () => {
      const ids = []
      for await (const event of bus.subscribe({ waitMs: 100 })) {
        ids.push(event.id)
        if (ids.length === 100) break
      }
      return ids.sort()
    }
    const all = Promise.all([consume(), consume(), consume()])
    for (let i = 0; i < 100; i++) bus.ingest({ i })
    const [a, b, c] = await all
    assert.deepEqual(a, b)
    assert.deepEqual(b, c)
  })
})
