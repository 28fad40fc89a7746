// Types of `require('purple-rain')`.
//
// What the native addon defines with #[napi] (the EventBus methods implemented in Rust and the
// objects they return) is declared in native.d.ts, which the build generates from the Rust
// definitions (scripts/build.js; the build fails while the committed file differs). This file
// re-exports it and declares only what the Rust definitions cannot: what index.js adds (the
// ErrorCode object, `version` as a string, EventBus.create, ingest, ingestRaw, flush, poll and
// pollPacked with their request and page types, the subscriptions), the two ingest calls
// src/fast.rs installs as raw napi functions the generator does not see (ingestRawBatch,
// ingestPacked), the config JSON the library parses, and the fields src/errors.rs puts on
// errors. test/types.test.js checks every declared name against the runtime.

/// <reference types="node" />

import { EventBus as NativeEventBus, FlushReport } from './native'
export type { FlushReport, ScalingAdvice, ShardStats, Stats } from './native'

// index.js builds the ErrorCode object from the addon's errorCodes(); the codes are the
// library's error kinds (src/error/kind.rs), and src/errors.rs's tests pin this union to them.
/**
 * Stable `code` strings of every error the binding throws or rejects with: the library's error
 * kinds, each the C status name without `PR_ERR_` (a Rust test checks this list against them).
 */
export type ErrorCode =
  | 'NULL_ARGUMENT'
  | 'INVALID_UTF8'
  | 'INVALID_JSON'
  | 'CONFIG'
  | 'BACKPRESSURE'
  | 'UNROUTED'
  | 'SHUTTING_DOWN'
  | 'INVALID_CURSOR'
  | 'INVALID_FILTER'
  | 'INVALID_REQUEST'
  | 'ADAPTER'
  | 'ADAPTER_TRANSIENT'
  | 'ADAPTER_CONNECTION'
  | 'ADAPTER_FATAL'
  | 'ADAPTER_BACKPRESSURE'
  | 'SCALING'
  | 'PANIC'
  | 'INVALID_ARGUMENT'
  | 'BUFFER_TOO_SMALL'
  | 'TIMEOUT'
  | 'DISK_CORRUPT'
  | 'DISK_LOCKED'

/** `ErrorCode.SHUTTING_DOWN === 'SHUTTING_DOWN'`, and so on for every code. */
export declare const ErrorCode: { readonly [K in ErrorCode]: K }

// src/errors.rs builds these Errors by hand: napi's own errors carry no such fields.
/** Every error is an `Error` with a stable `code`; the message comes from the library. */
export interface PurpleRainError extends Error {
  code: ErrorCode
  /** Batch and packed ingest: events accepted before the failing one. */
  accepted?: number
  /** TIMEOUT from `flush({ timeoutMs })`: events still queued (they stay queued). */
  undelivered?: number
  /** TIMEOUT from `flush({ timeoutMs })`: events dropped since the previous flush. */
  dropped?: number
}

// index.js: the addon's version(), read once.
/** The crate version. */
export declare const version: string

// The JSON the library parses (EventBusConfig::from_json, ConsumeRequest::from_json), which
// index.js serialises: serde types of the core crate, not #[napi] items.
/** Bus configuration, in the JSON shape shared with C, Go and the CLI (snake_case keys). */
export interface EventBusConfig {
  shards?: number
  /** Slots per shard ring, a power of two. */
  ring_capacity?: number
  batch?: {
    max_events?: number
    max_delay_ms?: number
    /** Retried until `max_attempts` or `max_elapsed_ms` (from the first failure of a run) is spent. */
    retry?: { max_attempts?: number; initial_backoff_ms?: number; max_backoff_ms?: number; max_elapsed_ms?: number }
  }
  backpressure?: 'block' | 'drop_oldest' | 'drop_newest'
  adapter?:
    | { type: 'noop' }
    | { type: 'memory'; max_events_per_shard?: number; max_bytes_per_shard?: number | null }
    | { type: 'redis'; url: string; stream_prefix?: string }
    | { type: 'jetstream'; url: string; stream_prefix?: string }
    | {
        type: 'disk'
        dir: string
        fsync?: 'batch' | 'interval' | 'never'
        fsync_interval_ms?: number
        segment_bytes?: number
        cache_bytes_per_shard?: number
        max_bytes_per_shard?: number | null
        max_age_ms?: number | null
        repair?: boolean
        read_only?: boolean
      }
    | {
        type: 'net'
        /** Address to listen on (`host:port`); omitted = only dial out. */
        listen?: string | null
        /** Peers to dial, and redial with backoff whenever the connection drops. */
        peers?: string[]
        /** Dial the members learned from peers (default true); false keeps exactly `peers`. */
        learn_peers?: boolean
        /** Forget a learned address after this long (ms) with no connection; 0: never. Default 300000. */
        forget_learned_after_ms?: number
        /** The cluster key: 64 hex digits (32 random bytes), the same on every node. */
        key?: string | null
        /** A file holding the key as 64 hex digits, instead of `key`. */
        key_file?: string | null
        /** A file holding this node's static private key, created when missing (for pinning). */
        identity_file?: string | null
        /** When not empty, the only peers accepted: their public keys, 64 hex digits each. */
        peer_public_keys?: string[]
        /** Plain text, no authentication: loopback addresses only. */
        insecure?: boolean
        max_events_per_shard?: number
        max_bytes_per_shard?: number | null
      }
  scaling?: null | {
    min_shards?: number
    max_shards?: number
    auto?: boolean
    fill_ratio_high?: number
    fill_ratio_low?: number
    ingest_rate_high?: number
    ingest_rate_low?: number
    cooldown_ms?: number
    scale_down_delay_ms?: number
  }
  producer_nonce_path?: null | string
}

/** MongoDB-style filter: `$and $or $not $eq $ne $gt $gte $lt $lte $in $exists $prefix`, dot paths. */
export type Filter = Record<string, unknown>

/** What to poll. Unknown keys reject with `INVALID_REQUEST`. */
export interface PollRequest {
  /** Most events to return (default 100). */
  limit?: number
  /** A previous page's `cursor`; omitted = from the oldest retained event. */
  from?: string
  filter?: Filter
  ordering?: 'sequence' | 'timestamp'
  /** Only these shards. */
  shards?: number[]
  /** With nothing to return, wait up to this long for new events (long poll). */
  waitMs?: number
  /** The wire spelling of `waitMs`; either is accepted. */
  wait_ms?: number
}

// index.js: poll's events and pages, built from the flat page the addon returns.
/** A retained event. */
export interface StoredEvent {
  /** The adapter's position (`"{shard}-{sequence}"` for Memory). */
  id: string
  shard: number
  /** Per shard, strictly increasing, never reused. */
  sequence: bigint
  /** Ingestion wall clock, ns since the Unix epoch (exact: a bigint, not a lossy number). */
  timestampNs: bigint
  /**
   * The node that ingested the event: the Net adapter's node id (64 bits, hence a bigint; the
   * same id on every node of the mesh), `0n` from every other adapter.
   */
  origin: bigint
  /** The exact bytes ingested. */
  payload: Buffer
}

export interface PollResponse {
  events: StoredEvent[]
  /** Pass back as `from` to continue right after these events. */
  cursor: string
  /** Some shard holds events past `cursor` not examined yet. */
  hasMore: boolean
  /** Events trimmed by retention before the cursor reached them. */
  missed: number
}

/**
 * A poll page as flat arrays (`pollPacked`): the events `poll` would return, with nothing made
 * per event until asked for. Event `i` is `data[start(i) .. ends[i]]`, `shards[i]`,
 * `sequences[i]`, `timestampsNs[i]`, `origins[i]`, `id(i)`. The page owns its memory: it stays valid and
 * unchanged after later polls. `data` and `ends` are in `ingestPacked`'s shape.
 *
 * `sequences` and `timestampsNs` are `BigUint64Array`s: exact (nanoseconds since the epoch are
 * past 2^53, where a `Float64Array` would round them to 256 ns) and the same bigints `poll`
 * gives; use `Number(x)` where a rounded number will do.
 */
export declare class PackedPage implements Iterable<PackedEventView> {
  private constructor()
  /** Events in the page. */
  readonly count: number
  /** Every payload back to back. */
  readonly data: Buffer
  /** Where each payload ends in `data` (event `i` starts where `i - 1` ends; event 0 at 0). */
  readonly ends: Uint32Array
  readonly shards: Uint16Array
  readonly sequences: BigUint64Array
  readonly timestampsNs: BigUint64Array
  /** Each event's `origin` (the Net adapter's node ids; zeros from other adapters). */
  readonly origins: BigUint64Array
  /** Pass back as `from` to continue right after these events. */
  readonly cursor: string
  /** Some shard holds events past `cursor` not examined yet. */
  readonly hasMore: boolean
  /** Events trimmed by retention before the cursor reached them. */
  readonly missed: number
  /** Offset in `data` where event `i`'s payload starts. Throws a RangeError unless `0 <= i < count`. */
  start(i: number): number
  /** Event `i`'s payload: a view of `data`, no copy. */
  payload(i: number): Buffer
  /** Event `i`'s id (`"{shard}-{sequence}"` for Memory), built when asked. */
  id(i: number): string
  /** Event `i` as `poll` returns it: one object, for the events you keep. */
  event(i: number): StoredEvent
  /** Walks the page with ONE view object moved to each event: valid during its step only. */
  [Symbol.iterator](): Iterator<PackedEventView>
}

/** The view `for (const e of packedPage)` moves over the events (reused: keep `e.event()`). */
export interface PackedEventView {
  readonly page: PackedPage
  readonly index: number
  readonly shard: number
  readonly sequence: bigint
  readonly timestampNs: bigint
  readonly origin: bigint
  /** Payload offsets in `page.data`, for reading without a view object. */
  readonly start: number
  readonly end: number
  readonly payload: Buffer
  readonly id: string
  /** This event as its own object, valid after the walk moves on. */
  event(): StoredEvent
}

// index.js: flush's options; the argument type of ingestRaw and ingestRawBatch.
export interface FlushOptions {
  /** Deadline in milliseconds; omitted or null waits without one. */
  timeoutMs?: number | null
}

/** Event bytes: a Buffer/Uint8Array (copied once) or a string (its UTF-8). */
export type EventBytes = Buffer | Uint8Array | string

/**
 * A sharded event bus. The methods implemented in Rust (`shutdown`, `addShards`,
 * `removeShards`, `suggestScaling`, `stats`, `statsJson`, `statsPrometheus`, `shardIds`,
 * `isShuttingDown`) are declared in native.d.ts; these are the rest.
 */
export declare class EventBus extends NativeEventBus {
  // The addon's class has no constructor callable from JS: buses come from `create`.
  private constructor()

  // index.js: `create` also takes an object; `ingest` is JSON.stringify + `ingestRaw`, which
  // index.js makes per instance to wake the shard workers once per JS job.
  /** Starts a bus. `config`: an object, a JSON string, or nothing for the defaults. */
  static create(config?: EventBusConfig | string | null): Promise<EventBus>

  /** Accepts any JSON-serializable value (stored as compact JSON). Throws on failure. */
  ingest(value: unknown): void
  /** Accepts bytes as they are (no parsing). Throws on failure. */
  ingestRaw(event: EventBytes): void
  // src/fast.rs: raw napi functions set on each instance, which the generator cannot see.
  /**
   * Accepts events in order; returns how many (all). Stops at the first failure and throws,
   * with `accepted` on the error.
   */
  ingestRawBatch(events: EventBytes[]): number
  /**
   * Accepts `ends.length` events packed in `data`: event i is `data[ends[i-1] .. ends[i]]`
   * (`ends[-1] = 0`). `ends` non-decreasing and at most `data.length`, else INVALID_ARGUMENT
   * and nothing is ingested. Stops at the first failure and throws, with `accepted`.
   */
  ingestPacked(data: Buffer | Uint8Array, ends: Uint32Array): number

  // index.js: pages, subscriptions and flush options are built in JavaScript.
  /** Reads a page. */
  poll(request?: PollRequest | string | null): Promise<PollResponse>
  /** Reads the same page as `poll`, as flat arrays: no object per event. */
  pollPacked(request?: PollRequest | string | null): Promise<PackedPage>
  /** Events as they arrive, by long poll; ends when the bus shuts down. */
  subscribe(request?: Omit<PollRequest, 'waitMs'> & { waitMs?: number }): Subscription
  /** Non-empty packed pages as they arrive, by long poll; ends when the bus shuts down. */
  subscribePacked(request?: Omit<PollRequest, 'waitMs'> & { waitMs?: number }): PackedSubscription

  /**
   * Resolves once everything accepted before the call reached the adapter and it flushed, to
   * the drops since the previous flush (`lossy` = `dropped > 0`). With `timeoutMs`, rejects
   * with code TIMEOUT if the deadline passes first: the error's `undelivered` events stay
   * queued (nothing is cancelled), its `dropped` are the drops since the previous flush.
   */
  flush(options?: FlushOptions): Promise<FlushReport>
}

// index.js: the subscriptions.
/**
 * An async iterator of events (`for await (const e of bus.subscribe())`). `cursor` moves to a
 * page's cursor once that page's last event has been handed out: resuming with
 * `{ from: sub.cursor }` after a break mid-page repeats the rest of that page, never skips.
 */
export declare class Subscription implements AsyncIterableIterator<StoredEvent> {
  private constructor()
  cursor: string | null
  [Symbol.asyncIterator](): Subscription
  next(): Promise<IteratorResult<StoredEvent, undefined>>
  return(value?: unknown): Promise<IteratorResult<StoredEvent, undefined>>
  throw(error?: unknown): Promise<IteratorResult<StoredEvent, undefined>>
}

/**
 * An async iterator of non-empty packed pages (`for await (const page of bus.subscribePacked())`).
 * `cursor` moves to a page's cursor when the next page is asked for: resuming with
 * `{ from: sub.cursor }` after a break repeats the page being read, never skips one.
 */
export declare class PackedSubscription implements AsyncIterableIterator<PackedPage> {
  private constructor()
  cursor: string | null
  [Symbol.asyncIterator](): PackedSubscription
  next(): Promise<IteratorResult<PackedPage, undefined>>
  return(value?: unknown): Promise<IteratorResult<PackedPage, undefined>>
  throw(error?: unknown): Promise<IteratorResult<PackedPage, undefined>>
}
