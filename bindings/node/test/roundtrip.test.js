'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { withBus, drain } = require('./helpers')

test('round trip over many pages delivers every event exactly once', async () => {
  await withBus({ shards: 4 }, async (bus) => {
    const n = 5000
    for (let i = 0; i < n; i++) bus.ingest({ i })
    await bus.flush()
    const seen = new Map()
    let cursor
    let pages = 0
    for (;;) {
      const page = await bus.poll({ limit: 97, from: cursor })
      assert.ok(page.events.length <= 97)
      for (const e of page.events) {
        const { i } = JSON.parse(e.payload.toString())
        assert.equal(seen.has(i), false, `event ${i} delivered twice`)
        seen.set(i, e)
      }
      assert.equal(typeof page.cursor, 'string')
      cursor = page.cursor
      pages++
      if (!page.hasMore) break
    }
    assert.equal(seen.size, n)
    assert.ok(pages >= Math.ceil(n / 97))
    // The final cursor is at the end: nothing more, and new events come after it.
    const empty = await bus.poll({ from: cursor })
    assert.deepEqual(empty.events, [])
    bus.ingest({ i: n })
    await bus.flush()
    const next = await bus.poll({ from: cursor })
    assert.deepEqual(next.events.map((e) => JSON.parse(e.payload).i), [n])
  })
})

test('per shard, sequences are strictly increasing bigints and timestamps exact', async () => {
  await withBus({ shards: 3 }, async (bus) => {
    for (let i = 0; i < 600; i++) bus.ingestRaw(`{"i":${i}}`)
    await bus.flush()
    const { events } = await drain(bus, { limit: 1000 })
    assert.equal(events.length, 600)
    const last = new Map()
    for (const e of events) {
      assert.equal(typeof e.sequence, 'bigint')
      assert.equal(typeof e.timestampNs, 'bigint')
      assert.equal(e.origin, 0n, 'the Memory adapter knows no nodes')
      assert.equal(typeof e.shard, 'number')
      assert.equal(typeof e.id, 'string')
      assert.ok(Buffer.isBuffer(e.payload))
      const prev = last.get(e.shard)
      if (prev) {
        assert.ok(e.sequence > prev.sequence)
        assert.ok(e.timestampNs > prev.timestampNs)
      }
      last.set(e.shard, e)
      // Nanoseconds since the epoch are past 2^53: a JS number could not hold them exactly.
      assert.ok(e.timestampNs > BigInt(Number.MAX_SAFE_INTEGER))
      const ms = Number(e.timestampNs / 1_000_000n)
      assert.ok(Math.abs(ms - Date.now()) < 60_000)
      // Memory ids are "{shard}-{sequence}", so they pin the bigint exactly.
      assert.equal(e.id, `${e.shard}-${e.sequence}`)
    }
  })
})

test('payloads come back byte for byte, from Buffers, strings, batches and packed ingest', async () => {
  await withBus({ shards: 1 }, async (bus) => {
    const binary = Buffer.from([0, 255, 10, 13, 0x80, 0x7f])
    bus.ingestRaw(binary)
    bus.ingestRaw('h\u00e9llo \u{1F600}')
    bus.ingestRaw(new Uint8Array([1, 2, 3]))
    bus.ingestRaw(Buffer.alloc(0))
    assert.equal(bus.ingestRawBatch([Buffer.from('b1'), 'b2']), 2)
    const parts = ['p1', '', 'p333']
    const data = Buffer.from(parts.join(''))
    assert.equal(bus.ingestPacked(data, new Uint32Array([2, 2, 6])), 3)
    // A view into a larger buffer: only its own bytes count.
    const big = Buffer.from('xxxxVIEWyyyy')
    bus.ingestRaw(big.subarray(4, 8))
    bus.ingest({ nested: [1, { x: 'y' }], n: null })
    await bus.flush()
    const { events } = await drain(bus)
    assert.deepEqual(events.map((e) => e.payload), [
      binary,
      Buffer.from('h\u00e9llo \u{1F600}'),
      Buffer.from([1, 2, 3]),
      Buffer.alloc(0),
      Buffer.from('b1'),
      Buffer.from('b2'),
      Buffer.from('p1'),
      Buffer.alloc(0),
      Buffer.from('p333'),
      Buffer.from('VIEW'),
      Buffer.from('{"nested":[1,{"x":"y"}],"n":null}')
    ])
  })
})

test('concurrent polls from several async tasks each get a consistent page', async () => {
  await withBus({ shards: 4 }, async (bus) => {
    for (let i = 0; i < 2000; i++) bus.ingest({ i })
    await bus.flush()
    const readers = Array.from({ length: 8 }, async () => {
      const { events } = await drain(bus, { limit: 128 })
      return events.map((e) => JSON.parse(e.payload).i).sort((a, b) => a - b)
    })
    const results = await Promise.all(readers)
    const expected = Array.from({ length: 2000 }, (_, i) => i)
    for (const r of results) assert.deepEqual(r, expected)
  })
})

test('the event loop stays free while a long poll waits', async () => {
  await withBus({ shards: 2 }, async (bus) => {
    const started = Date.now()
    let ticks = 0
    const timer = setInterval(() => ticks++, 10)
    const page = await bus.poll({ waitMs: 300 })
    clearInterval(timer)
    assert.deepEqual(page.events, [])
    assert.ok(Date.now() - started >= 250, 'waited')
    assert.ok(ticks >= 10, `timers ran during the wait (${ticks})`)
  })
})

test('a long poll returns as soon as an event arrives', async () => {
  await withBus({ shards: 2 }, async (bus) => {
    const started = Date.now()
    setTimeout(() => bus.ingest({ late: true }), 50)
    const page = await bus.poll({ waitMs: 5000 })
    assert.equal(page.events.length, 1)
    assert.ok(Date.now() - started < 4000)
  })
})

test('payloads of every size survive the copy, as Buffers and as strings', async () => {
  await withBus({ shards: 2 }, async (bus) => {
    const sizes = [0, 1, 7, 100, 1023, 1024, 1025, 4096, 65535, 65536, 70000]
    const expected = []
    for (const [k, size] of sizes.entries()) {
      const buffer = Buffer.alloc(size)
      for (let i = 0; i < size; i++) buffer[i] = (i * 31 + k) & 0xff
      bus.ingestRaw(buffer)
      expected.push(buffer)
      const text = `${k}:` + '\u00e9a'.repeat(Math.floor(size / 3))
      bus.ingestRaw(text)
      expected.push(Buffer.from(text))
    }
    // Enough small events to cross many 64 KiB chunk boundaries.
    for (let i = 0; i < 3000; i++) {
      const text = `${i}-` + 'z'.repeat(i % 97)
      if (i % 2) bus.ingestRaw(text)
      else bus.ingestRaw(Buffer.from(text))
      expected.push(Buffer.from(text))
    }
    await bus.flush()
    const { events } = await drain(bus, { limit: 500, ordering: 'timestamp' })
    const key = (b) => b.toString('base64')
    assert.deepEqual(events.map((e) => key(e.payload)).sort(), expected.map(key).sort())
  })
})

test('single ingests reach the adapter without flush: workers are woken at the end of the job', async () => {
  await withBus({ shards: 4, ring_capacity: 1024, backpressure: 'block' }, async (bus) => {
    const started = Date.now()
    for (let i = 0; i < 10; i++) bus.ingestRaw(`{"i":${i}}`) // fewer than _wakeEvery(): only the microtask wakes
    let cursor
    let seen = 0
    while (seen < 10) {
      const page = await bus.poll({ from: cursor, waitMs: 5000 })
      seen += page.events.length
      cursor = page.cursor
    }
    assert.ok(Date.now() - started < 4000, 'delivered promptly, not at a poll deadline')
    // A long synchronous burst, 20x the rings: it only completes if workers drain during it.
    for (let i = 0; i < 20000; i++) bus.ingestRaw('x')
    await bus.flush()
    assert.equal(bus.stats().eventsDispatched, 20010)
  })
})
