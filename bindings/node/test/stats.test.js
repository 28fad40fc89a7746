'use strict'

// statsJson() and statsPrometheus(): the same figures as stats(), per shard and per adapter, in
// the documented JSON schema and the Prometheus text format (parsed with a real Prometheus parser
// in the Rust suite, tests/stats_export.rs).

const test = require('node:test')
const assert = require('node:assert/strict')
const { EventBus } = require('..')

test('statsJson agrees with stats(), per shard and per adapter; statsPrometheus has the totals', async () => {
  const bus = await EventBus.create({ shards: 3, adapter: { type: 'memory' } })
  for (let i = 0; i < 300; i++) bus.ingest({ i })
  await bus.flush()
  const doc = JSON.parse(bus.statsJson())
  const stats = bus.stats()
  assert.equal(doc.schema, 1)
  assert.equal(doc.totals.events_ingested, 300)
  assert.equal(doc.totals.events_ingested, stats.eventsIngested)
  assert.equal(doc.totals.events_dispatched, stats.eventsDispatched)
  assert.equal(doc.totals.events_pending, 0)
  assert.equal(doc.totals.shards, 3)
  assert.equal(doc.shards.length, 3)
  assert.equal(doc.shards.reduce((n, s) => n + s.events_ingested, 0), 300)
  assert.equal(doc.adapter.name, 'memory')
  const retained = doc.adapter.metrics.filter(m => m.name === 'memory_retained_events')
  assert.equal(retained.reduce((n, m) => n + m.value, 0), 300)

  const text = bus.statsPrometheus()
  assert.match(text, /^# TYPE purple_rain_events_ingested_total counter$/m)
  assert.match(text, /^purple_rain_events_ingested_total 300$/m)
  assert.match(text, /^purple_rain_shard_events_ingested_total\{shard="0"\} \d+$/m)

  await bus.shutdown()
  assert.equal(JSON.parse(bus.statsJson()).totals.workers_running, 0, 'final figures after shutdown')
})
