// The quickstart in TypeScript: `tsc --noEmit -p examples/node` type-checks it against the
// package's index.d.ts (CI runs that; it is not executed). Each call is used with the types a
// program would write, so a declaration that drifts from the runtime shape fails to compile.
import {
  EventBus,
  ErrorCode,
  FlushReport,
  PackedPage,
  PollResponse,
  PurpleRainError,
  ScalingAdvice,
  ShardStats,
  Stats,
  StoredEvent,
  version
} from 'purple-rain'

async function main (): Promise<void> {
  console.log(`purple-rain ${version}`)
  const bus: EventBus = await EventBus.create({ shards: 4, adapter: { type: 'memory' } })
  bus.ingest({ kind: 'click', user: 7 })
  bus.ingestRaw(Buffer.from('{"kind":"view","user":8}'))
  const accepted: number = bus.ingestPacked(Buffer.from('{"n":1}{"n":2}'), new Uint32Array([7, 14]))
  const report: FlushReport = await bus.flush({ timeoutMs: 5000 })
  console.log(accepted, report.dropped, report.lossy)

  let cursor: string | undefined
  for (;;) {
    const page: PollResponse = await bus.poll({ limit: 2, from: cursor, filter: { path: 'kind', value: 'click' } })
    page.events.forEach((e: StoredEvent) => console.log(e.shard, e.sequence, e.id, e.payload.toString()))
    cursor = page.cursor
    if (!page.hasMore) break
  }
  const packed: PackedPage = await bus.pollPacked({ limit: 10 })
  for (const view of packed) console.log(view.event().id, view.shard, view.sequence + 1n, view.end - view.start)
  const first: Buffer = packed.payload(0)
  const sequences: BigUint64Array = packed.sequences
  const timestamp: bigint = packed.timestampsNs[0]
  const origins: BigUint64Array = packed.origins
  const event: StoredEvent = packed.event(0)
  console.log(packed.count, packed.id(0), packed.start(0), packed.ends[0], packed.shards[0], first.length,
    sequences.length, timestamp, origins[0] === event.origin, event.id, packed.data.length, packed.cursor, packed.hasMore, packed.missed)
  for await (const page of bus.subscribePacked({ waitMs: 10 })) {
    console.log(page.count, page.cursor)
    break
  }

  for await (const event of bus.subscribe({ waitMs: 10 })) {
    console.log(event.id)
    break
  }

  const added: number[] = await bus.addShards(1)
  const advice: ScalingAdvice = await bus.suggestScaling()
  if (advice.action === 'scaleDown') await bus.removeShards(advice.shards)
  const shard: ShardStats | undefined = bus.stats().shards.find((s) => s.id === added[0])
  console.log(added, advice.count, shard?.ringCapacity, shard?.retired)

  const stats: Stats = bus.stats()
  const doc = JSON.parse(bus.statsJson()) as { totals: { events_ingested: number } }
  const metrics: string = bus.statsPrometheus()
  console.log(stats.eventsIngested === doc.totals.events_ingested, metrics.length, bus.shardIds())
  try {
    bus.ingestRaw(Buffer.alloc(0))
  } catch (e) {
    const error = e as PurpleRainError
    if (error.code === ErrorCode.INVALID_ARGUMENT) console.log(error.message)
  }
  await bus.shutdown()
}

main().catch((e: PurpleRainError) => {
  console.error(`${e.code}: ${e.message}`)
  process.exit(1)
})
