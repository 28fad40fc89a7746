'use strict'

// Loader and the JavaScript half of the binding. The native addon (`purple-rain.node`, built by
// `npm run build`) provides the EventBus class; this file adds what is better written here:
// `EventBus.create` accepting a config object, `ingest(value)` through JSON.stringify,
// `poll` turning packed pages into event objects, and `subscribe` as an async iterator.

const path = require('node:path')

function loadNative () {
  const candidates = [
    process.env.PURPLE_RAIN_NODE_ADDON,
    path.join(__dirname, 'purple-rain.node')
  ].filter(Boolean)
  let lastError
  for (const file of candidates) {
    try {
      return require(file)
    } catch (e) {
      lastError = e
    }
  }
  const error = new Error(
    `purple-rain: native addon not found (tried ${candidates.join(', ')}); run \`npm run build\` in ${__dirname}`
  )
  error.cause = lastError
  throw error
}

const native = loadNative()
const { EventBus } = native

/** Stable error codes, as `err.code`. */
const ErrorCode = Object.freeze(Object.fromEntries(native.errorCodes().map((c) => [c, c])))

function codedError (code, message, extra) {
  const error = new Error(message)
  error.code = code
  if (extra) Object.assign(error, extra)
  return error
}

function stringify (value, code, what) {
  try {
    return JSON.stringify(value)
  } catch (e) {
    throw codedError(code, `invalid ${what}: ${e.message}`, { cause: e })
  }
}

function configJson (config) {
  if (config === undefined || config === null) return null
  if (typeof config === 'string') return config
  if (typeof config !== 'object') {
    throw codedError(ErrorCode.CONFIG, 'invalid config: expected an object, a JSON string or nothing')
  }
  return stringify(config, ErrorCode.CONFIG, 'config')
}

// `waitMs` is the JS spelling of the request's `wait_ms`; every other key goes through as is,
// so the library rejects unknown keys with INVALID_REQUEST.
function requestJson (request) {
  if (request === undefined || request === null) return null
  if (typeof request === 'string') return request
  if (typeof request !== 'object') {
    throw codedError(ErrorCode.INVALID_REQUEST, 'invalid poll request: expected an object, a JSON string or nothing')
  }
  if ('waitMs' in request) {
    const { waitMs, ...rest } = request
    return stringify({ ...rest, wait_ms: waitMs }, ErrorCode.INVALID_REQUEST, 'poll request')
  }
  return stringify(request, ErrorCode.INVALID_REQUEST, 'poll request')
}

function unpackPage (page) {
  const n = page.count
  const events = new Array(n)
  if (n > 0) {
    const { data, ends, shards, sequences, timestamps } = page
    const ids = page.idsJson ? JSON.parse(page.ids) : page.ids.split('\n')
    let start = 0
    for (let i = 0; i < n; i++) {
      const end = ends[i]
      events[i] = {
        id: ids[i],
        shard: shards[i],
        sequence: sequences[i],
        timestampNs: timestamps[i],
        payload: data.subarray(start, end)
      }
      start = end
    }
  }
  return { events, cursor: page.cursor, hasMore: page.hasMore, missed: page.missed }
}

const nativeCreate = EventBus._create

Object.defineProperty(EventBus, 'create', {
  configurable: true,
  writable: true,
  /**
   * Starts a bus. `config` is an object or JSON string in the shape of the spec's config JSON
   * (snake_case keys, e.g. `{ shards: 4, ring_capacity: 4096, adapter: { type: 'memory' } }`);
   * unknown keys reject with code CONFIG.
   */
  value: async function create (config) {
    const bus = await nativeCreate.call(EventBus, configJson(config))
    defineIngestRaw(bus)
    return bus
  }
})

// `ingestRaw` leaves the shard workers asleep and wakes them once, at the end of the current
// JS job (a microtask), or every `_wakeEvery()` events within a long synchronous burst: waking a
// worker is a futex syscall, and doing it per event was most of the cost of a single ingest.
// Events are in the ring (counted, flushable, drained on shutdown) from the moment the call
// returns; only the worker's start waits for the end of the job.
function defineIngestRaw (bus) {
  const ingestUnwoken = bus._ingestUnwoken
  const wake = bus._wake
  const wakeEvery = bus._wakeEvery()
  let unwoken = 0
  let scheduled = false
  const wakeAtEndOfJob = () => {
    scheduled = false
    unwoken = 0
    wake()
  }
  Object.defineProperty(bus, 'ingestRaw', {
    configurable: true,
    writable: true,
    /** Accepts one event as is (Buffer/Uint8Array bytes, or a string's UTF-8). Throws on failure. */
    value: function ingestRaw (event) {
      ingestUnwoken(event)
      if (++unwoken >= wakeEvery) {
        unwoken = 0
        wake()
      } else if (!scheduled) {
        scheduled = true
        queueMicrotask(wakeAtEndOfJob)
      }
    }
  })
}

Object.defineProperties(EventBus.prototype, {
  ingest: {
    configurable: true,
    writable: true,
    /** Accepts any JSON-serializable value, stored as its compact JSON. */
    value: function ingest (value) {
      let text
      try {
        text = JSON.stringify(value)
      } catch (e) {
        throw codedError(ErrorCode.INVALID_JSON, `event is not serialisable: ${e.message}`, { cause: e })
      }
      if (text === undefined) {
        throw codedError(ErrorCode.INVALID_JSON, `event is not serialisable: ${typeof value} has no JSON form`)
      }
      return this.ingestRaw(text)
    }
  },
  flush: {
    configurable: true,
    writable: true,
    /**
     * Resolves to `{ dropped, lossy }` once everything accepted before the call reached the
     * adapter and it flushed. With `{ timeoutMs }`, rejects with code TIMEOUT (and
     * `undelivered`, `dropped` on the error) if the deadline passes first; the undelivered
     * events stay queued.
     */
    value: async function flush (options) {
      if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
        throw codedError(ErrorCode.INVALID_ARGUMENT, 'flush options: expected an object such as { timeoutMs: 5000 }')
      }
      return this._flush(options?.timeoutMs ?? null)
    }
  },
  poll: {
    configurable: true,
    writable: true,
    /** Reads a page: `{ events, cursor, hasMore, missed }`. */
    value: async function poll (request) {
      return unpackPage(await this._pollPacked(requestJson(request)))
    }
  },
  subscribe: {
    configurable: true,
    writable: true,
    /** An async iterator over events from `request.from` (or the start), by long poll. */
    value: function subscribe (request) {
      return new Subscription(this, request)
    }
  }
})

/** Default long-poll wait of a subscription, in milliseconds. */
const SUBSCRIBE_WAIT_MS = 1000

/**
 * Events as they arrive, by long poll. Keeps its cursor (`subscription.cursor`, resumable with
 * `{ from }`): it moves to a page's cursor once the page's last event has been handed out, so
 * resuming after a `break` in the middle of a page delivers the rest of that page again
 * (at-least-once), and after a page boundary exactly once. Ends (done) when the bus shuts down.
 */
class Subscription {
  constructor (bus, request) {
    if (request !== undefined && request !== null && (typeof request !== 'object' || Array.isArray(request))) {
      throw codedError(ErrorCode.INVALID_REQUEST, 'invalid subscribe request: expected an object')
    }
    const { from, waitMs, wait_ms: waitMsSnake, ...rest } = request || {}
    this._bus = bus
    this._request = rest
    this._waitMs = waitMs ?? waitMsSnake ?? SUBSCRIBE_WAIT_MS
    this.cursor = from ?? null
    this._events = []
    this._next = 0
    this._pageCursor = null
    this._done = false
  }

  [Symbol.asyncIterator] () {
    return this
  }

  async next () {
    for (;;) {
      if (this._done) return { value: undefined, done: true }
      if (this._next < this._events.length) {
        const value = this._events[this._next++]
        if (this._next === this._events.length) this.cursor = this._pageCursor
        return { value, done: false }
      }
      let page
      try {
        page = await this._bus.poll({ ...this._request, from: this.cursor ?? undefined, waitMs: this._waitMs })
      } catch (e) {
        this._done = true
        if (e && e.code === ErrorCode.SHUTTING_DOWN) return { value: undefined, done: true }
        throw e
      }
      if (this._done) return { value: undefined, done: true }
      if (page.events.length === 0) {
        this.cursor = page.cursor
      } else {
        this._events = page.events
        this._next = 0
        this._pageCursor = page.cursor
      }
    }
  }

  /** Ends the subscription (`break` in `for await` calls this). */
  async return (value) {
    this._done = true
    this._events = []
    return { value, done: true }
  }

  async throw (error) {
    this._done = true
    this._events = []
    throw error
  }
}

module.exports = {
  EventBus,
  Subscription,
  ErrorCode,
  version: native.version()
}
