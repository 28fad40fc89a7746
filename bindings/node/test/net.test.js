'use strict'

// Two buses joined by the Net adapter through the JSON config, in this one process on loopback
// with a generated key: each holds both nodes' events exactly once, each with the node that
// ingested it as `origin` (the node id the adapter reports in statsJson, never 0).

const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const net = require('node:net')
const { EventBus } = require('..')

const N = 500

/** A loopback port nothing listens on now. */
function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** This node's id, from the adapter's `net_node` metric (its `node` label, 16 hex digits). */
function nodeId (bus) {
  const metric = JSON.parse(bus.statsJson()).adapter.metrics.find((m) => m.name === 'net_node')
  assert.ok(metric, 'the Net adapter reports net_node')
  return BigInt(`0x${metric.labels.node}`)
}

/** Long-polls `bus` from the start until it returned `want` events or 30 s passed. */
async function pollUntil (bus, want) {
  const events = []
  let from
  for (const deadline = Date.now() + 30_000; events.length < want && Date.now() < deadline;) {
    const page = await bus.poll({ limit: 1000, from, waitMs: 100 })
    events.push(...page.events)
    from = page.cursor
  }
  return events
}

test('net: a two-node round trip through the JSON config carries each event\'s origin', async (t) => {
  const key = crypto.randomBytes(32).toString('hex')
  const [portA, portB] = [await freePort(), await freePort()]
  const a = await EventBus.create({ adapter: { type: 'net', listen: `127.0.0.1:${portA}`, key } })
  t.after(() => a.shutdown())
  const b = await EventBus.create(JSON.stringify({
    adapter: { type: 'net', listen: `127.0.0.1:${portB}`, peers: [`127.0.0.1:${portA}`], key }
  }))
  t.after(() => b.shutdown())
  const ids = { a: nodeId(a), b: nodeId(b) }
  assert.notEqual(ids.a, 0n)
  assert.notEqual(ids.a, ids.b)

  for (let i = 0; i < N; i++) {
    a.ingestRaw(`a-${i}`)
    b.ingestRaw(`b-${i}`)
  }
  await Promise.all([a.flush(), b.flush()])

  for (const [name, bus] of [['a', a], ['b', b]]) {
    const events = await pollUntil(bus, 2 * N)
    const payloads = new Set(events.map((e) => e.payload.toString()))
    assert.equal(payloads.size, events.length, `${name}: an event arrived twice`)
    assert.equal(events.length, 2 * N, `${name} holds ${events.length} of ${2 * N} events`)
    for (const e of events) {
      assert.equal(typeof e.origin, 'bigint')
      assert.equal(e.origin, ids[e.payload.toString()[0]], `${name}: origin of ${e.payload}`)
    }

    // The packed page carries the same origins: column, view and event alike.
    const page = await bus.poll({ limit: 2 * N })
    const packed = await bus.pollPacked({ limit: 2 * N })
    assert.equal(packed.count, 2 * N)
    assert.deepEqual([...packed.origins], page.events.map((e) => e.origin))
    for (const view of packed) assert.equal(view.origin, packed.origins[view.index])
    assert.deepEqual(packed.event(0), page.events[0])
  }
})

/** The value of the adapter metric `name` (the first with that name), or undefined. */
function metric (bus, name) {
  return JSON.parse(bus.statsJson()).adapter.metrics.find((m) => m.name === name)?.value
}

/** Waits up to 20 s for `condition`, failing with `what`. */
async function eventually (what, condition) {
  for (const deadline = Date.now() + 20_000; !condition();) {
    assert.ok(Date.now() < deadline, `never happened: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

test('net: pinning through the JSON config admits the pinned identity and refuses another', async (t) => {
  const fs = require('node:fs')
  const os = require('node:os')
  const path = require('node:path')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'purple-rain-pin-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const key = crypto.randomBytes(32).toString('hex')
  const [portA, portB, portC] = [await freePort(), await freePort(), await freePort()]
  const identityFile = path.join(dir, 'a.key')
  const nodeA = () => EventBus.create({
    adapter: { type: 'net', listen: `127.0.0.1:${portA}`, key, identity_file: identityFile }
  })
  let a = await nodeA()
  const publicKey = () => JSON.parse(a.statsJson()).adapter.metrics.find((m) => m.name === 'net_node').labels.public_key
  const pinned = publicKey()
  assert.match(pinned, /^[0-9a-f]{64}$/)
  // The identity is kept in its file: the same public key after a restart.
  await a.shutdown()
  a = await nodeA()
  t.after(() => a.shutdown())
  assert.equal(publicKey(), pinned)

  const b = await EventBus.create({
    adapter: { type: 'net', listen: `127.0.0.1:${portB}`, peers: [`127.0.0.1:${portA}`], key, peer_public_keys: [pinned] }
  })
  t.after(() => b.shutdown())
  const stranger = crypto.randomBytes(32).toString('hex')
  const c = await EventBus.create({
    adapter: { type: 'net', listen: `127.0.0.1:${portC}`, peers: [`127.0.0.1:${portA}`], key, peer_public_keys: [stranger] }
  })
  t.after(() => c.shutdown())
  await eventually('B connected to its pinned peer', () => metric(b, 'net_connected_peers') === 1)
  await eventually('C refused A, whose key it does not pin', () => metric(c, 'net_auth_failures_total') >= 1)
  assert.equal(metric(c, 'net_connected_peers'), 0)
  await assert.rejects(
    async () => EventBus.create({ adapter: { type: 'net', listen: '127.0.0.1:1', key, peer_public_keys: ['xyz'] } }),
    /peer_public_keys\[0\]/
  )
})
