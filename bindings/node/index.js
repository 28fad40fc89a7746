'use strict'

// Loader and the JavaScript half of the binding. The native addon (`purple-rain.node`, built by
// `npm run build`) provides the EventBus class; this file adds what is better written here:
// `EventBus.create` accepting a config object, `ingest(value)` through JSON.stringify,
// `poll` turning packed pages into event objects, `pollPacked` wrapping them in `PackedPage`,
// and `subscribe` / `subscribePacked` as async iterators.

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
    const { data, ends, shards, sequences, timestamps, origins } = page
    const ids = page.idsJson ? JSON.parse(page.ids) : page.ids.split('\n')
    let start = 0
    for (let i = 0; i < n; i++) {
      const end = ends[i]
      events[i] = {
        id: ids[i],
        shard: shards[i],
        sequence: sequences[i],
        timestampNs: timestamps[i],
        origin: origins[i],
        payload: data.subarray(start, end)
      }
      start = end
    }
  }
  return { events, cursor: page.cursor, hasMore: page.hasMore, missed: page.missed }
}

/**
 * One poll page as flat arrays: what `pollPacked` resolves to. Event `i` is
 * `data[start(i) .. ends[i]]`, `shards[i]`, `sequences[i]`, `timestampsNs[i]`, `origins[i]`; `id(i)` builds its
 * id when asked. Nothing is made per event until asked for, and the page owns its memory: it
 * stays valid, unchanged, after later polls. `data` and `ends` are in `ingestPacked`'s shape.
 */
class PackedPage {
  constructor (raw) {
    this.count = raw.count
    this.data = raw.data
    this.ends = raw.ends
    this.shards = raw.shards
    this.sequences = raw.sequences
    this.timestampsNs = raw.timestamps
    this.origins = raw.origins
    this.cursor = raw.cursor
    this.hasMore = raw.hasMore
    this.missed = raw.missed
    // null: every id is `${shard}-${sequence}`; else the joined ids, split on first use.
    this._ids = raw.ids
    this._idsJson = raw.idsJson
  }

  /** Offset in `data` where event `i`'s payload starts (it ends at `ends[i]`). */
  start (i) {
    return this._check(i) === 0 ? 0 : this.ends[i - 1]
  }

  /** Event `i`'s payload: a view of `data` (no copy). */
  payload (i) {
    return this.data.subarray(this.start(i), this.ends[i])
  }

  /** Event `i`'s id, built on demand. */
  id (i) {
    this._check(i)
    if (this._ids === null) return `${this.shards[i]}-${this.sequences[i]}`
    if (typeof this._ids === 'string') this._ids = this._idsJson ? JSON.parse(this._ids) : this._ids.split('\n')
    return this._ids[i]
  }

  /** Event `i` as `poll` returns it (one object: for the events you keep). */
  event (i) {
    return {
      id: this.id(i),
      shard: this.shards[i],
      sequence: this.sequences[i],
      timestampNs: this.timestampsNs[i],
      origin: this.origins[i],
      payload: this.payload(i)
    }
  }

  /**
   * Walks the page with ONE view object, moved to each event in turn: nothing is allocated
   * per event. The view is only valid during its iteration step; keep `view.event()` instead.
   */
  [Symbol.iterator] () {
    const view = new EventView(this)
    const count = this.count
    const step = { value: view, done: false }
    return {
      next () {
        if (++view.index < count) return step
        step.done = true
        step.value = undefined
        return step
      },
      [Symbol.iterator] () {
        return this
      }
    }
  }

  _check (i) {
    if (!(i >= 0 && i < this.count && Number.isInteger(i))) {
      throw new RangeError(`event index ${i} is outside this page of ${this.count}`)
    }
    return i
  }
}

/** The moving view `for (const e of packedPage)` hands out; fields read the page's columns. */
class EventView {
  constructor (page) {
    this.page = page
    this.index = -1
  }

  get shard () { return this.page.shards[this.index] }
  get sequence () { return this.page.sequences[this.index] }
  get timestampNs () { return this.page.timestampsNs[this.index] }
  get origin () { return this.page.origins[this.index] }
  /** Offset of the payload in `page.data`. */
  get start () { return this.index === 0 ? 0 : this.page.ends[this.index - 1] }
  /** End of the payload in `page.data`. */
  get end () { return this.page.ends[this.index] }
  get payload () { return this.page.payload(this.index) }
  get id () { return this.page.id(this.index) }
  /** This event as its own object, valid after the iteration moves on. */
  event () { return this.page.event(this.index) }
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
      return unpackPage(await this._pollPacked(requestJson(request), false))
    }
  },
  pollPacked: {
    configurable: true,
    writable: true,
    /** Reads a page as flat arrays (`PackedPage`): the same events as `poll`, no object per event. */
    value: async function pollPacked (request) {
      return new PackedPage(await this._pollPacked(requestJson(request), true))
    }
  },
  subscribe: {
    configurable: true,
    writable: true,
    /** An async iterator over events from `request.from` (or the start), by long poll. */
    value: function subscribe (request) {
      return new Subscription(this, request)
    }
  },
  subscribePacked: {
    configurable: true,
    writable: true,
    /** An async iterator over non-empty `PackedPage`s from `request.from` (or the start). */
    value: function subscribePacked (request) {
      return new PackedSubscription(this, request)
    }
  }
})

/** Default long-poll wait of a subscription, in milliseconds. */
const SUBSCRIBE_WAIT_MS = 1000

/** What both subscriptions share: the request, its long-poll wait, the cursor, the ending. */
class Tail {
  constructor (bus, request) {
    if (request !== undefined && request !== null && (typeof request !== 'object' || Array.isArray(request))) {
      throw codedError(ErrorCode.INVALID_REQUEST, 'invalid subscribe request: expected an object')
    }
    const { from, waitMs, wait_ms: waitMsSnake, ...rest } = request || {}
    this._bus = bus
    this._request = rest
    this._waitMs = waitMs ?? waitMsSnake ?? SUBSCRIBE_WAIT_MS
    this.cursor = from ?? null
    this._pageCursor = null
    this._done = false
  }

  [Symbol.asyncIterator] () {
    return this
  }

  /** The next page by `poll` (a bus method) from `cursor`, or null once the tail is over. */
  async _nextPage (poll) {
    let page
    try {
      page = await poll.call(this._bus, { ...this._request, from: this.cursor ?? undefined, waitMs: this._waitMs })
    } catch (e) {
      this._done = true
      if (e && e.code === ErrorCode.SHUTTING_DOWN) return null
      throw e
    }
    return this._done ? null : page
  }

  /** Ends the subscription (`break` in `for await` calls this). */
  async return (value) {
    this._done = true
    this._release()
    return { value, done: true }
  }

  async throw (error) {
    this._done = true
    this._release()
    throw error
  }

  _release () {}
}

/**
 * Events as they arrive, by long poll. Keeps its cursor (`subscription.cursor`, resumable with
 * `{ from }`): it moves to a page's cursor once the page's last event has been handed out, so
 * resuming after a `break` in the middle of a page delivers the rest of that page again
 * (at-least-once), and after a page boundary exactly once. Ends (done) when the bus shuts down.
 */
class Subscription extends Tail {
  constructor (bus, request) {
    super(bus, request)
    this._events = []
    this._next = 0
  }

  async next () {
    for (;;) {
      if (this._done) return { value: undefined, done: true }
      if (this._next < this._events.length) {
        const value = this._events[this._next++]
        if (this._next === this._events.length) this.cursor = this._pageCursor
        return { value, done: false }
      }
      const page = await this._nextPage(this._bus.poll)
      if (page === null) return { value: undefined, done: true }
      if (page.events.length === 0) {
        this.cursor = page.cursor
      } else {
        this._events = page.events
        this._next = 0
        this._pageCursor = page.cursor
      }
    }
  }

  _release () {
    this._events = []
  }
}

/**
 * Non-empty `PackedPage`s as they arrive, by long poll. `cursor` moves to a page's cursor when
 * the next page is asked for (the consumer is then done with it), so resuming with
 * `{ from: sub.cursor }` after a `break` repeats the page being read, never skips one.
 * Ends (done) when the bus shuts down.
 */
class PackedSubscription extends Tail {
  async next () {
    for (;;) {
      if (this._done) return { value: undefined, done: true }
      if (this._pageCursor !== null) {
        this.cursor = this._pageCursor
        this._pageCursor = null
      }
      const page = await this._nextPage(this._bus.pollPacked)
      if (page === null) return { value: undefined, done: true }
      if (page.count === 0) {
        this.cursor = page.cursor
      } else {
        this._pageCursor = page.cursor
        return { value: page, done: false }
      }
    }
  }
}

module.exports = {
  EventBus,
  Subscription,
  PackedSubscription,
  PackedPage,
  ErrorCode,
  version: native.version()
}
