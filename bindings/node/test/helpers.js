'use strict'

const { EventBus } = require('..')

/** A Memory-adapter bus; shut down by the caller (or by `withBus`). */
function memoryBus (extra = {}) {
  return EventBus.create({ shards: 4, adapter: { type: 'memory' }, ...extra })
}

/** Runs `fn(bus)` and always shuts the bus down. */
async function withBus (config, fn) {
  const bus = await memoryBus(config)
  try {
    return await fn(bus)
  } finally {
    await bus.shutdown()
  }
}

/** Polls from `from` until a page says there is no more; returns every event. */
async function drain (bus, request = {}) {
  const events = []
  let cursor = request.from
  let pages = 0
  for (;;) {
    const page = await bus.poll({ ...request, from: cursor })
    events.push(...page.events)
    cursor = page.cursor
    pages++
    if (!page.hasMore) return { events, cursor, pages }
  }
}

/** Rejects with the error `promise` rejects with, or fails when it resolves. */
async function rejection (promise) {
  try {
    await promise
  } catch (e) {
    return e
  }
  throw new Error('expected a rejection')
}

/** The error `fn` throws, or fails when it returns. */
function thrown (fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error('expected a throw')
}

module.exports = { memoryBus, withBus, drain, rejection, thrown }
