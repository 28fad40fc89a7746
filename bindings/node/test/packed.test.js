'use strict'

// pollPacked / PackedPage / subscribePacked: the same events as poll, as flat arrays.

const test = require('node:test')
const assert = require('node:assert/strict')
const { PackedPage, PackedSubscription } = require('..')
const { withBus } = require('./helpers')

/** 1200 events over 4 shards: JSON of varied sizes, one non-JSON, empty and binary payloads. */
function fill (bus) {
  for (let i = 0; i < 1200; i++) {
    if (i % 97 === 5) bus.ingestRaw(Buffer.alloc(0))
    else if (i % 89 === 3) bus.ingestRaw(Buffer.from([0, 255, 10, i & 255]))
    else bus.ingest({ kind: i % 3 === 0 ? 'click' : 'view', i, user: { id: i % 10 }, pad: 'x'.repeat(i % 41) })
  }
  bus.ingestRaw('not json at all')
}

/** Asserts that `packed` carries exactly the events and page fields of `page`. */
function assertSamePage (packed, page, where) {
  assert.ok(packed instanceof PackedPage, where)
  assert.equal(packed.count, page.events.length, `${where}: count`)
  assert.equal(packed.cursor, page.cursor, `${where}: cursor`)
  assert.equal(packed.hasMore, page.hasMore, `${where}: hasMore`)
  assert.equal(packed.missed, page.missed, `${where}: missed`)
  assert.equal(packed.ends.length, packed.count)
  assert.equal(packed.data.length, packed.count === 0 ? 0 : packed.ends[packed.count - 1], `${where}: data length`)
  page.events.forEach((e, i) => {
    const at = `${where}, event ${i}`
    assert.equal(packed.id(i), e.id, `${at}: id`)
    assert.equal(packed.shards[i], e.shard, `${at}: shard`)
    assert.equal(packed.sequences[i], e.sequence, `${at}: sequence`)
    assert.equal(packed.timestampsNs[i], e.timestampNs, `${at}: timestamp`)
    assert.ok(packed.payload(i).equals(e.payload), `${at}: payload`)
    assert.deepEqual(packed.event(i), e, `${at}: event(i)`)
  })
}

/**
 * Reads `request` to the end with poll and pollPacked from the same cursors, page by page, and
 * asserts each pair equal. Returns the pages read.
 */
async function lockstep (bus, request, where) {
  const pages = []
  let cursor
  for (let n = 0; ; n++) {
    const page = await bus.poll({ ...request, from: cursor })
    const packed = await bus.pollPacked({ ...request, from: cursor })
    assertSamePage(packed, page, `${where}, page ${n}`)
    pages.push(page)
    cursor = page.cursor
    if (!page.hasMore) return pages
  }
}

test('pollPacked carries exactly what poll returns, across filters, orderings, shards and limits', async () => {
  await withBus({ shards: 4 }, async (bus) => {
    fill(bus)
    await bus.flush()
    const filters = [
      undefined,
      { path: 'kind', value: 'click' },
      { $and: [{ $eq: { path: 'user.id', value: 7 } }, { $not: { path: 'kind', value: 'click' } }] },
      { $in: { path: 'i', value: [1, 2, 999] } },
      { $prefix: { path: 'kind', value: 'vi' } }
    ]
    let midShard = 0
    for (const ordering of ['sequence', 'timestamp']) {
      for (const filter of filters) {
        for (const limit of [1, 7, 100, 5000]) {
          const request = { limit, ordering, ...(filter ? { filter } : {}) }
          const pages = await lockstep(bus, request, JSON.stringify(request))
          // Pages that end mid-shard: the next page goes on with a shard this one had.
          for (let k = 1; k < pages.length; k++) {
            const had = new Set(pages[k - 1].events.map((e) => e.shard))
            if (pages[k].events.some((e) => had.has(e.shard))) midShard++
          }
        }
      }
    }
    assert.ok(midShard > 100, `only ${midShard} pages went on mid-shard`)
    await lockstep(bus, { limit: 50, shards: [1, 3] }, 'shards [1, 3]')
    // A page that is empty: at the end, and with a filter nothing matches.
    await lockstep(bus, { filter: { path: 'kind', value: 'nothing' } }, 'empty')
  })
})

test('timestamp ordering holds in the packed columns', async () => {
  await withBus({ shards: 4 }, async (bus) => {
    for (let i = 0; i < 800; i++) bus.ingest({ i })
    await bus.flush()
    const page = await bus.pollPacked({ limit: 1000, ordering: 'timestamp' })
    assert.equal(page.count, 800)
    const { shards, sequences, timestampsNs } = page
    for (let k = 1; k < page.count; k++) {
      const ordered = timestampsNs[k - 1] < timestampsNs[k] ||
        (timestampsNs[k - 1] === timestampsNs[k] &&
          (shards[k - 1] < shards[k] || (shards[k - 1] === shards[k] && sequences[k - 1] < sequences[k])))
      assert.ok(ordered, `event ${k} out of order`)
    }
    assert.ok(new Set(shards).size > 1)
  })
})

test('a page stays valid and unchanged after later polls', async () => {
  await withBus({ shards: 2 }, async (bus) => {
    for (let i = 0; i < 300; i++) bus.ingest({ i, pad: 'y'.repeat(i % 13) })
    await bus.flush()
    const first = await bus.pollPacked({ limit: 100 })
    const snapshot = Array.from({ length: first.count }, (_, i) => first.event(i))
    const kept = first.payload(0)
    const copy = Buffer.from(first.data)
    let cursor = first.cursor
    for (let n = 0; n < 5; n++) {
      const next = await bus.pollPacked({ limit: 100, from: cursor })
      cursor = next.cursor
      bus.ingest({ more: n })
      await bus.flush()
    }
    assert.notEqual(first.data.buffer, (await bus.pollPacked({ limit: 100 })).data.buffer)
    assert.ok(first.data.equals(copy))
    assert.ok(kept.equals(snapshot[0].payload))
    assert.deepEqual(Array.from({ length: first.count }, (_, i) => first.event(i)), snapshot)
  })
})

test('the page iterator moves one view over every event', async () => {
  await withBus({ shards: 3 }, async (bus) => {
    for (let i = 0; i < 250; i++) bus.ingestRaw(`{"i":${i}}`)
    await bus.flush()
    const page = await bus.pollPacked({ limit: 1000 })
    assert.equal(page.count, 250)
    let n = 0
    let first
    for (const view of page) {
      if (n === 0) first = view
      assert.equal(view, first, 'one view object for the whole walk')
      assert.equal(view.index, n)
      assert.equal(view.shard, page.shards[n])
      assert.equal(view.sequence, page.sequences[n])
      assert.equal(view.timestampNs, page.timestampsNs[n])
      assert.equal(view.id, page.id(n))
      assert.equal(page.data.toString('utf8', view.start, view.end), page.payload(n).toString())
      assert.deepEqual(view.event(), page.event(n))
      n++
    }
    assert.equal(n, 250)
    assert.deepEqual([...(await bus.pollPacked({ limit: 0 }))], [])
  })
})

test('ids come on demand, from the page columns or from the ids the adapter sent', () => {
  const raw = (ids, idsJson) => ({
    count: 2,
    data: Buffer.from('abcde'),
    ends: new Uint32Array([2, 5]),
    shards: new Uint16Array([3, 0]),
    sequences: new BigUint64Array([17n, 2n ** 64n - 1n]),
    timestamps: new BigUint64Array([1n, 2n]),
    origins: new BigUint64Array([0n, 2n ** 64n - 1n]),
    ids,
    idsJson,
    cursor: 'c',
    hasMore: false,
    missed: 0
  })
  const derived = new PackedPage(raw(null, false))
  assert.equal(derived.id(0), '3-17')
  assert.equal(derived.id(1), '0-18446744073709551615')
  assert.equal(derived.payload(1).toString(), 'cde')
  assert.equal(derived.event(1).origin, 2n ** 64n - 1n)
  const joined = new PackedPage(raw('1700000000000-0\n1700000000000-1', false))
  assert.deepEqual([joined.id(0), joined.id(1)], ['1700000000000-0', '1700000000000-1'])
  const json = new PackedPage(raw('["a\\nb","c"]', true))
  assert.deepEqual([json.id(0), json.id(1)], ['a\nb', 'c'])
  for (const bad of [-1, 2, 0.5, NaN, '0']) {
    assert.throws(() => derived.id(bad), RangeError, String(bad))
    assert.throws(() => derived.payload(bad), RangeError, String(bad))
  }
})

test('pollPacked rejects like poll', async () => {
  await withBus({ shards: 2 }, async (bus) => {
    for (const [request, code] of [
      [{ bogus: 1 }, 'INVALID_REQUEST'],
      [{ from: 'not a cursor' }, 'INVALID_CURSOR'],
      [{ filter: { $nope: 1 } }, 'INVALID_FILTER'],
      [7, 'INVALID_REQUEST']
    ]) {
      await assert.rejects(bus.pollPacked(request), (e) => e.code === code, JSON.stringify(request))
      await assert.rejects(bus.poll(request), (e) => e.code === code, JSON.stringify(request))
    }
  })
})

test('a long pollPacked wakes on new events and ends at shutdown', { timeout: 20000 }, async () => {
  await withBus({ shards: 2 }, async (bus) => {
    const end = await bus.pollPacked({})
    const waiting = bus.pollPacked({ from: end.cursor, waitMs: 30000 })
    bus.ingest({ late: true })
    const page = await waiting
    assert.equal(page.count, 1)
    assert.equal(JSON.parse(page.payload(0)).late, true)
    const parked = assert.rejects(bus.pollPacked({ from: page.cursor, waitMs: 30000 }), (e) => e.code === 'SHUTTING_DOWN')
    await bus.shutdown()
    await parked
  })
})

test('subscribePacked tails in pages, resumes at-least-once and ends at shutdown', { timeout: 20000 }, async () => {
  const bus = await require('./helpers').memoryBus({ shards: 2 })
  for (let i = 0; i < 30; i++) bus.ingest({ i })
  await bus.flush()
  const sub = bus.subscribePacked({ limit: 10, waitMs: 50 })
  assert.ok(sub instanceof PackedSubscription)
  const seen = []
  let pages = 0
  for await (const page of sub) {
    assert.ok(page.count > 0 && page.count <= 10)
    for (let i = 0; i < page.count; i++) seen.push(JSON.parse(page.payload(i)).i)
    if (++pages === 2) break
  }
  // After a break, the cursor still stands before the page being read: it comes again.
  const again = bus.subscribePacked({ from: sub.cursor, limit: 10, waitMs: 50 })
  const repeated = (await again.next()).value
  const last = Array.from({ length: repeated.count }, (_, i) => JSON.parse(repeated.payload(i)).i)
  assert.deepEqual(last, seen.slice(-repeated.count))
  // Tail the rest, then a late event, then shutdown ends the iteration.
  const done = (async () => {
    for await (const page of again) {
      for (let i = 0; i < page.count; i++) seen.push(JSON.parse(page.payload(i)).i)
      if (seen.length === 31) await bus.shutdown()
    }
  })()
  bus.ingest({ i: 30 })
  await done
  assert.deepEqual(seen.slice().sort((a, b) => a - b), Array.from({ length: 31 }, (_, i) => i))
})

test('a Memory read happens on the JS thread; a Disk bus reads on the runtime, never on the event loop', async () => {
  const fs = require('node:fs')
  const os = require('node:os')
  const path = require('node:path')
  await withBus({ shards: 2 }, async (bus) => {
    bus.ingest({ a: 1 })
    await bus.flush()
    const page = bus._pollPacked(null, true)
    assert.ok(!(page instanceof Promise), 'a ready Memory page comes back at once')
    assert.equal(page.count, 1)
  })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'purple-rain-node-'))
  try {
    await withBus({ shards: 2, adapter: { type: 'disk', dir } }, async (bus) => {
      for (let i = 0; i < 300; i++) bus.ingest({ i })
      await bus.flush()
      assert.ok(bus._pollPacked(null, true) instanceof Promise, 'a Disk read may touch files: it runs off the JS thread')
      await lockstep(bus, { limit: 64 }, 'disk')
    })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
