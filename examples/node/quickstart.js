'use strict'

// Ingest, poll back, print stats: the embedded Memory adapter needs no server.
// Build the addon first: (cd bindings/node && npm run build), then: node examples/node/quickstart.js

const { EventBus } = require('../../bindings/node')

async function main () {
  const bus = await EventBus.create({ shards: 4, adapter: { type: 'memory' } })

  bus.ingest({ kind: 'click', user: 7 }) // any JSON value
  bus.ingestRaw(Buffer.from('{"kind":"view","user":8}')) // bytes as they are
  const data = Buffer.from('{"n":1}{"n":2}{"n":3}') // many events, one call
  bus.ingestPacked(data, new Uint32Array([7, 14, 21]))
  await bus.flush() // everything above is now in the adapter

  let cursor
  for (;;) {
    const page = await bus.poll({ limit: 2, from: cursor })
    for (const e of page.events) {
      console.log(`shard ${e.shard} seq ${e.sequence} at ${e.timestampNs}ns: ${e.payload}`)
    }
    cursor = page.cursor
    if (!page.hasMore) break
  }

  const clicks = await bus.poll({ filter: { path: 'kind', value: 'click' } })
  console.log(`clicks: ${clicks.events.length}`)

  // The same page as flat arrays: no object per event (for throughput).
  const packed = await bus.pollPacked({ limit: 1000 })
  const bytes = packed.ends[packed.count - 1]
  console.log(`packed: ${packed.count} events, ${bytes} payload bytes, first ${packed.payload(0)} (id ${packed.id(0)})`)

  const { eventsIngested, eventsDispatched, eventsDropped } = bus.stats()
  console.log({ eventsIngested, eventsDispatched, eventsDropped })
  await bus.shutdown()
}

main().catch((e) => {
  console.error(`${e.code ?? 'ERROR'}: ${e.message}`)
  process.exit(1)
})
