'use strict'

// The addon in worker threads: each worker's environment gets its own buses and teardown, and a
// worker that exits (or is terminated) with a live bus does not take the process down.

const test = require('node:test')
const assert = require('node:assert/strict')
const { Worker } = require('node:worker_threads')
const path = require('node:path')

const source = `
const { parentPort, workerData } = require('node:worker_threads')
const { EventBus } = require(workerData.addon)
;(async () => {
  const bus = await EventBus.create({ shards: 2, adapter: { type: 'memory' } })
  for (let i = 0; i < 100; i++) bus.ingest({ worker: workerData.id, i })
  await bus.flush()
  const page = await bus.poll({ limit: 1000 })
  parentPort.postMessage(page.events.length)
  if (workerData.shutdown) await bus.shutdown()
  else bus.poll({ from: page.cursor, waitMs: 60000 }).catch(() => {}) // parked: nothing new
})()
`

function runWorker (id, options) {
  return new Worker(source, { eval: true, workerData: { addon: path.resolve(__dirname, '..'), id, ...options } })
}

test('buses work in several worker threads at once, and workers exit cleanly', async () => {
  const results = await Promise.all([0, 1, 2].map((id) => new Promise((resolve, reject) => {
    const worker = runWorker(id, { shutdown: true })
    let count
    worker.on('message', (n) => { count = n })
    worker.on('error', reject)
    worker.on('exit', (code) => resolve({ code, count }))
  })))
  for (const r of results) assert.deepEqual(r, { code: 0, count: 100 })
})

test('terminating a worker with a live bus and a parked long poll is safe', async () => {
  const worker = runWorker(9, { shutdown: false })
  const count = await new Promise((resolve, reject) => {
    worker.on('message', resolve)
    worker.on('error', reject)
  })
  assert.equal(count, 100)
  await new Promise((resolve) => setTimeout(resolve, 50))
  let exited = false
  worker.on('exit', () => { exited = true })
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal(exited, false, 'the parked poll keeps the worker alive')
  const code = await worker.terminate()
  assert.equal(typeof code, 'number')
})
