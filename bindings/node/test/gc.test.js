'use strict'

// A bus that is garbage-collected without shutdown() is shut down (its rings and workers freed),
// and buses never shut down do not keep the process alive. Run in child processes because they
// need --expose-gc and a clean exit to observe.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const addon = path.resolve(__dirname, '..')

function runChild (source, timeoutMs = 60000) {
  const started = Date.now()
  const child = spawnSync(process.execPath, ['--expose-gc', '-e', source], {
    env: { ...process.env, PURPLE_RAIN_TEST_ADDON: addon },
    encoding: 'utf8',
    timeout: timeoutMs
  })
  return { ...child, elapsed: Date.now() - started }
}

const CHILD_PRELUDE = `
const { EventBus } = require(process.env.PURPLE_RAIN_TEST_ADDON)
const tick = () => new Promise((resolve) => setImmediate(resolve))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const rssMb = () => process.memoryUsage().rss / 1048576
const threads = () => Number(/Threads:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0)
async function collect () { for (let i = 0; i < 4; i++) { gc(); await tick(); await sleep(20) } }
`

test('buses dropped without shutdown are collected, freed, and the process exits', () => {
  const child = runChild(CHILD_PRELUDE + `
(async () => {
  const config = { shards: 4, ring_capacity: 16384, adapter: { type: 'memory' } }
  const churn = async (rounds) => {
    for (let round = 0; round < rounds; round++) {
      let bus = await EventBus.create(config)
      for (let i = 0; i < 200; i++) bus.ingestRaw('x'.repeat(100))
      bus = null
      if (round % 25 === 24) await collect()
    }
    await collect()
  }
  // Warm up until the allocator holds its high-water mark: freed rings stay in glibc's arenas,
  // so RSS climbs for the first rounds even though nothing leaks, then levels off.
  await churn(100)
  const before = rssMb()
  const threadsBefore = threads()
  await churn(200)
  console.log(JSON.stringify({ before, after: rssMb(), threadsBefore, threadsAfter: threads() }))
})()
`)
  assert.equal(child.error, undefined, `child did not finish: ${child.error}`)
  assert.equal(child.status, 0, child.stderr)
  const report = JSON.parse(child.stdout.trim().split('\n').pop())
  // Each bus holds 4 MiB of ring slots: leaked, the 200 measured buses would add 800 MB. Freed,
  // RSS stays at the warmed-up plateau (measured: within 20 MB of it).
  assert.ok(report.after - report.before < 100, `RSS grew from ${report.before} to ${report.after} MB`)
  // One library runtime for every bus: no thread per bus.
  assert.ok(report.threadsAfter <= report.threadsBefore + 2, `threads ${report.threadsBefore} -> ${report.threadsAfter}`)
})

test('buses never shut down do not keep the process alive', () => {
  const child = runChild(CHILD_PRELUDE + `
(async () => {
  const buses = []
  for (let i = 0; i < 5; i++) {
    const bus = await EventBus.create({ shards: 2, adapter: { type: 'memory' } })
    for (let k = 0; k < 1000; k++) bus.ingest({ k })
    buses.push(bus)
  }
  globalThis.keep = buses
  console.log('done')
})()
`, 20000)
  assert.equal(child.error, undefined, `child hung: ${child.error}`)
  assert.equal(child.status, 0, child.stderr)
  assert.match(child.stdout, /done/)
  assert.ok(child.elapsed < 15000)
})

test('process.exit() with open buses and a parked long poll exits cleanly', () => {
  const child = runChild(CHILD_PRELUDE + `
(async () => {
  const bus = await EventBus.create({ shards: 2, adapter: { type: 'memory' } })
  bus.poll({ waitMs: 60000 }).catch(() => {})
  await sleep(50)
  process.exit(0)
})()
`, 20000)
  assert.equal(child.error, undefined, `child hung: ${child.error}`)
  assert.equal(child.status, 0, child.stderr)
})

test('an ingest function kept after its bus was collected throws SHUTTING_DOWN, never crashes', () => {
  const child = runChild(CHILD_PRELUDE + `
(async () => {
  let bus = await EventBus.create({ shards: 2, adapter: { type: 'memory' } })
  const ingestRaw = bus.ingestRaw
  const ingestPacked = bus.ingestPacked
  ingestRaw('before')
  bus = null
  await collect()
  await sleep(100)
  const codes = []
  for (const call of [() => ingestRaw('after'), () => ingestPacked(Buffer.from('x'), new Uint32Array([1]))]) {
    try { call(); codes.push('accepted') } catch (e) { codes.push(e.code) }
  }
  console.log(JSON.stringify(codes))
})()
`, 20000)
  assert.equal(child.status, 0, child.stderr)
  assert.deepEqual(JSON.parse(child.stdout.trim().split('\n').pop()), ['SHUTTING_DOWN', 'SHUTTING_DOWN'])
})

test('reading 10M events packed holds memory flat: pages are freed by GC', () => {
  const child = runChild(CHILD_PRELUDE + `
(async () => {
  const BACKLOG = 200_000
  const bus = await EventBus.create({
    shards: 4, ring_capacity: 1 << 16, backpressure: 'block',
    adapter: { type: 'memory', max_events_per_shard: BACKLOG }
  })
  const event = Buffer.alloc(100, 'x')
  const data = Buffer.concat(Array(1000).fill(event))
  const ends = Uint32Array.from({ length: 1000 }, (_, i) => 100 * (i + 1))
  for (let n = 0; n < BACKLOG; n += 1000) bus.ingestPacked(data, ends)
  await bus.flush()
  let read = 0
  let bytes = 0
  const pass = async () => {
    let cursor
    for (;;) {
      const page = await bus.pollPacked({ limit: 1000, from: cursor })
      read += page.count
      bytes += page.data.length + page.payload(page.count - 1).length + Number(page.sequences[0] & 1n)
      cursor = page.cursor
      if (!page.hasMore) return
    }
  }
  // Warm up until the heap and allocator reach their working size, then read 10M events.
  for (let i = 0; i < 5; i++) await pass()
  await collect()
  const before = rssMb()
  read = 0
  while (read < 10_000_000) await pass()
  await collect()
  console.log(JSON.stringify({ before, after: rssMb(), read, bytes }))
  await bus.shutdown()
})()
`, 120000)
  assert.equal(child.error, undefined, `child did not finish: ${child.error}`)
  assert.equal(child.status, 0, child.stderr)
  const report = JSON.parse(child.stdout.trim().split('\n').pop())
  assert.equal(report.read, 10_000_000)
  // 10M events are 10 000 pages of 130 KB (payloads and columns): kept, they would add 1.3 GB.
  assert.ok(report.after - report.before < 50, `RSS grew from ${report.before} to ${report.after} MB`)
})
