'use strict'

// npm run bench [-- --quick] [-- --json]
//
// Ingest: ingestRaw single, ingestRawBatch and ingestPacked with 1000 x 100-byte events per
// call, into a Noop bus with big rings in block mode (nothing is rejected), against a pure-JS
// baseline that pushes the same Buffers into an array. Poll: `poll` and `pollPacked` read pages
// of 1000 from a 1M-event Memory backlog, taking turns with C's `pr_poll` on the same backlog
// (tests/c/bench.c, built from this checkout: needs cargo, make and gcc). Each case runs TRIALS
// times (env BENCH_TRIALS, default 5) and reports the median and the best trial, since a shared
// machine makes single runs noisy. Prints events/s and ratios; `--json` prints one JSON line as
// well.

const { EventBus } = require('..')

const quick = process.argv.includes('--quick')
const json = process.argv.includes('--json')
const SECONDS = Number(process.env.BENCH_SECONDS || (quick ? 0.2 : 0.5))
const TRIALS = Number(process.env.BENCH_TRIALS || (quick ? 2 : 5))
const BATCH = 1000
const SIZE = 100
const BACKLOG = quick ? 100_000 : 1_000_000

function events () {
  const out = []
  for (let i = 0; i < BATCH; i++) {
    const head = `{"i":${i},"pad":"`
    out.push(Buffer.from(head + 'x'.repeat(SIZE - head.length - 2) + '"}'))
  }
  return out
}

function pack (bufs) {
  const data = Buffer.concat(bufs)
  const ends = new Uint32Array(bufs.length)
  let end = 0
  bufs.forEach((b, i) => { end += b.length; ends[i] = end })
  return { data, ends }
}

/** Median and best of TRIALS trials of `trial()` (each returning events/s). */
async function trials (trial) {
  const rates = []
  for (let t = 0; t < TRIALS; t++) rates.push(await trial())
  return summary(rates)
}

function summary (rates) {
  rates.sort((a, b) => a - b)
  return { median: rates[Math.floor(rates.length / 2)], best: rates[rates.length - 1], rates }
}

/**
 * C's `pr_poll` on the same backlog (tests/c/bench.c, pages of 1000 read through views), built
 * from this checkout: `{ run() -> events/s }`, or `{ why }` when it cannot be built.
 */
function cPollBench () {
  const { spawnSync } = require('node:child_process')
  const path = require('node:path')
  const root = path.resolve(__dirname, '..', '..', '..')
  const steps = [['cargo', ['build', '--release', '--lib', '--quiet']], ['make', ['-s', '-C', 'tests/c', 'bench']]]
  for (const [cmd, args] of steps) {
    const built = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
    if (built.status !== 0) return { why: `${cmd} ${args.join(' ')} failed: ${built.error || built.stderr}` }
  }
  const bin = path.join(root, 'tests', 'c', 'build', 'release', 'bench')
  return {
    run () {
      const out = spawnSync(bin, ['1000', String(BACKLOG), '1'], { encoding: 'utf8' })
      const m = /pr_poll\s+(\d+) events\/s/.exec(out.stdout || '')
      if (out.status !== 0 || !m) throw new Error(`C bench failed: ${out.stderr || out.error}`)
      return Number(m[1])
    }
  }
}

/** Runs `step` (which handles `perStep` events) for SECONDS, TRIALS times; events/s. */
function measure (perStep, step) {
  const warm = Date.now() + 100
  while (Date.now() < warm) step()
  return trials(() => once(perStep, step))
}

function once (perStep, step) {
  let n = 0
  const start = process.hrtime.bigint()
  const until = start + BigInt(Math.round(SECONDS * 1e9))
  let now = start
  while (now < until) {
    for (let k = 0; k < 16; k++) step()
    n += 16 * perStep
    now = process.hrtime.bigint()
  }
  return n / (Number(now - start) / 1e9)
}

function measureAsync (fn) {
  return trials(async () => {
    const start = process.hrtime.bigint()
    const n = await fn()
    return n / (Number(process.hrtime.bigint() - start) / 1e9)
  })
}

const fmt = (rate) => `${(rate / 1e6).toFixed(2).padStart(7)} M events/s`.padStart(18)

async function main () {
  const bufs = events()
  const { data, ends } = pack(bufs)
  const results = {}

  // Pure JS: the same Buffers into an array, emptied every BATCH.
  const sink = []
  results.jsArrayPush = await measure(BATCH, () => {
    for (let i = 0; i < BATCH; i++) sink.push(bufs[i])
    sink.length = 0
  })

  const ingestConfig = {
    shards: 4,
    ring_capacity: 1 << 18,
    backpressure: 'block',
    batch: { max_events: 4096, max_delay_ms: 1 },
    adapter: { type: 'noop' }
  }
  const bus = await EventBus.create(ingestConfig)
  results.ingestRaw = await measure(BATCH, () => {
    for (let i = 0; i < BATCH; i++) bus.ingestRaw(bufs[i])
  })
  results.ingestRawBatch = await measure(BATCH, () => bus.ingestRawBatch(bufs))
  results.ingestPacked = await measure(BATCH, () => bus.ingestPacked(data, ends))
  const strings = bufs.map((b) => b.toString())
  results.ingestRawString = await measure(BATCH, () => {
    for (let i = 0; i < BATCH; i++) bus.ingestRaw(strings[i])
  })
  const values = strings.map((s) => JSON.parse(s))
  results.ingestValue = await measure(BATCH, () => {
    for (let i = 0; i < BATCH; i++) bus.ingest(values[i])
  })
  await bus.flush()
  const ingestStats = bus.stats()
  await bus.shutdown()

  // Poll: a Memory backlog, read in pages of 1000 from the start.
  const mem = await EventBus.create({
    shards: 4,
    ring_capacity: 1 << 16,
    backpressure: 'block',
    adapter: { type: 'memory', max_events_per_shard: BACKLOG }
  })
  for (let n = 0; n < BACKLOG; n += BATCH) mem.ingestPacked(data, ends)
  await mem.flush()
  // The poll cases and C's pr_poll take turns, trial by trial, so load drift on a shared
  // machine hits them alike.
  let touched = 0
  const readAll = async (poll, read) => {
    let n = 0
    let cursor
    for (;;) {
      const page = await poll({ limit: BATCH, from: cursor })
      n += read(page)
      cursor = page.cursor
      if (!page.hasMore) return n
    }
  }
  const pollCases = {
    poll: () => readAll((r) => mem.poll(r), (page) => page.events.length),
    // Touching every field (bigints, payload bytes, id): what a consumer of objects pays.
    pollTouched: () => readAll((r) => mem.poll(r), (page) => {
      for (const e of page.events) touched += e.payload.length + Number(e.sequence & 1n) + e.id.length
      return page.events.length
    }),
    pollPacked: () => readAll((r) => mem.pollPacked(r), (page) => page.count),
    // Every column and each payload's last byte, as the C bench reads its views (no id).
    pollPackedTouched: () => readAll((r) => mem.pollPacked(r), (page) => {
      const { data, ends, shards, sequences, timestampsNs } = page
      for (let i = 0; i < page.count; i++) {
        touched += shards[i] + data[ends[i] - 1] + Number(sequences[i] & 1n) + Number(timestampsNs[i] & 1n)
      }
      return page.count
    })
  }
  const c = cPollBench()
  const rates = Object.fromEntries([...Object.keys(pollCases), 'cPoll'].map((k) => [k, []]))
  for (let t = 0; t < TRIALS; t++) {
    for (const [name, run] of Object.entries(pollCases)) {
      const start = process.hrtime.bigint()
      const n = await run()
      if (n !== BACKLOG) throw new Error(`${name} read ${n} of ${BACKLOG}`)
      rates[name].push(n / (Number(process.hrtime.bigint() - start) / 1e9))
    }
    if (c.run) rates.cPoll.push(c.run())
  }
  for (const [name, list] of Object.entries(rates)) if (list.length) results[name] = summary(list)
  await mem.shutdown()

  const base = results.jsArrayPush.median
  const rows = [
    ['JS baseline: array.push(Buffer)', results.jsArrayPush, null],
    ['ingestRaw(Buffer), one call per event', results.ingestRaw, 3e6],
    ['ingestRaw(string), one call per event', results.ingestRawString, null],
    ['ingest(value) via JSON.stringify', results.ingestValue, null],
    ['ingestRawBatch(Array<Buffer> x 1000)', results.ingestRawBatch, null],
    ['ingestPacked(Buffer, Uint32Array x 1000)', results.ingestPacked, 10e6],
    [`poll pages of 1000 (${BACKLOG} backlog)`, results.poll, 3e6],
    ['poll + read every field', results.pollTouched, null],
    ['pollPacked pages of 1000', results.pollPacked, 10e6],
    ['pollPacked + read every column, last byte', results.pollPackedTouched, null],
    ['C pr_poll pages of 1000 (tests/c bench)', results.cPoll, null]
  ].filter(([, r]) => r)
  const os = require('node:os')
  console.log(`purple-rain Node bench: ${BATCH} x ${SIZE}-byte events per call; ${TRIALS} trials of ${SECONDS}s per case`)
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  console.log(`${'case'.padEnd(44)} ${'median'.padStart(18)} ${'best'.padStart(18)}  vs JS (median)`)
  for (const [name, r, target] of rows) {
    const ratio = `${(r.median / base).toFixed(4)}x`
    const goal = target ? `  target ${(target / 1e6).toFixed(0)}M/s: median ${r.median >= target ? 'met' : 'missed'}, best ${r.best >= target ? 'met' : 'missed'}` : ''
    console.log(`${name.padEnd(44)} ${fmt(r.median)} ${fmt(r.best)}  ${ratio.padStart(9)}${goal}`)
  }
  const ratio = (a, b) => (a.median / b.median).toFixed(1)
  console.log(`packed / single: ${ratio(results.ingestPacked, results.ingestRaw)}x, packed / batch: ${ratio(results.ingestPacked, results.ingestRawBatch)}x (medians)`)
  if (results.cPoll) {
    const vsC = (r) => `${(r.median / results.cPoll.median).toFixed(2)}x median, ${(r.best / results.cPoll.best).toFixed(2)}x best`
    console.log(`vs C pr_poll (same run, target >= 0.5x): pollPacked ${vsC(results.pollPacked)}; pollPacked + columns ${vsC(results.pollPackedTouched)}; poll ${vsC(results.poll)}`)
  } else {
    console.log(`C pr_poll baseline unavailable: ${c.why}`)
  }
  console.log(`pollPacked / poll: ${ratio(results.pollPacked, results.poll)}x, read every field: ${ratio(results.pollPackedTouched, results.pollTouched)}x (medians)`)
  console.log(`ingest bus: ${ingestStats.eventsIngested} ingested, ${ingestStats.rejectedBackpressure} rejected, ${ingestStats.blockedWaits} blocked waits`)
  if (touched < 0) console.log(touched)
  if (json) console.log(JSON.stringify(results))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
