'use strict'

// The declarations against the runtime. native.d.ts is generated from the #[napi] items (the
// build fails while it is stale); index.d.ts re-exports it and declares what index.js and the
// raw ingest functions add, by hand. Every function, class, static and method either declares
// must exist with that name and be callable; every exported value declared must be exported.
// (The reverse holds too for the public surface: the runtime must not export names the
// declarations do not declare.)

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const binding = require('..')
const { EventBus, Subscription, PackedSubscription, PackedPage } = binding

const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8')
const native = fs.readFileSync(path.join(__dirname, '..', 'native.d.ts'), 'utf8')

/** The body of `declare class Name { ... }` (classes here have no nested braces deeper than types). */
function classBody (name, source = dts) {
  const start = source.search(new RegExp(`export declare class ${name}\\b[^{]*\\{`))
  assert.ok(start >= 0, `class ${name} declared`)
  let depth = 0
  for (let i = source.indexOf('{', start); i < source.length; i++) {
    if (source[i] === '{') depth++
    if (source[i] === '}' && --depth === 0) return source.slice(source.indexOf('{', start) + 1, i)
  }
  throw new Error(`unterminated class ${name}`)
}

/** Method names declared at the top level of a class body: `name(` or `static name(`. */
function declaredMethods (body) {
  const statics = []
  const methods = []
  let depth = 0
  for (const line of body.split('\n')) {
    const trimmed = line.trim()
    if (depth === 0) {
      const m = /^(static\s+)?([A-Za-z_$][\w$]*|\[Symbol\.\w+\])\s*(<[^>]*>)?\(/.exec(trimmed)
      if (m && !trimmed.startsWith('private constructor')) (m[1] ? statics : methods).push(m[2])
    }
    for (const ch of line) {
      if (ch === '{' || ch === '(') depth++
      if (ch === '}' || ch === ')') depth--
    }
  }
  return { statics, methods }
}

function resolveName (target, name) {
  const symbol = /^\[Symbol\.(\w+)\]$/.exec(name)
  return symbol ? target[Symbol[symbol[1]]] : target[name]
}

test('every declared export exists', () => {
  const declared = [...dts.matchAll(/^export declare (?:const|class|function) ([A-Za-z_$][\w$]*)/gm)].map((m) => m[1])
  assert.deepEqual(declared.sort(), ['ErrorCode', 'EventBus', 'PackedPage', 'PackedSubscription', 'Subscription', 'version'])
  for (const name of declared) assert.ok(name in binding, `export ${name} missing at runtime`)
  assert.deepEqual(Object.keys(binding).sort(), declared.sort(), 'runtime exports match the declared ones')
  assert.equal(typeof binding.version, 'string')
})

test('every declared ErrorCode exists and no other', () => {
  const union = /export type ErrorCode =([^]*?)\n\n/.exec(dts)[1]
  const declared = [...union.matchAll(/'([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1])
  assert.deepEqual(declared.slice().sort(), Object.keys(binding.ErrorCode).sort())
})

test('index.d.ts re-exports the generated declarations and repeats none of them', () => {
  assert.match(dts, /^import \{ EventBus as NativeEventBus, [^}]*\} from '\.\/native'$/m)
  assert.match(dts, /^export declare class EventBus extends NativeEventBus \{/m)
  const generated = declaredMethods(classBody('EventBus', native))
  const written = declaredMethods(classBody('EventBus'))
  // The Rust-implemented methods, so a generator change that drops them fails here.
  assert.deepEqual(generated.methods.slice().sort(), ['addShards', 'isShuttingDown', 'removeShards', 'shardIds',
    'shutdown', 'stats', 'statsJson', 'statsPrometheus', 'suggestScaling'])
  assert.deepEqual(generated.statics, [])
  for (const name of written.methods) assert.ok(!generated.methods.includes(name), `${name} declared twice`)
  // Internal natives (underscore names) stay out of the public types.
  assert.doesNotMatch(native, /\b_\w+\(/)
  const interfaces = [...native.matchAll(/^export interface (\w+)/gm)].map((m) => m[1]).sort()
  assert.deepEqual(interfaces, ['FlushReport', 'ScalingAdvice', 'ShardStats', 'Stats'])
  const reexported = /^export type \{ ([^}]*) \} from '\.\/native'$/m.exec(dts)[1].split(', ').sort()
  assert.deepEqual(reexported, interfaces)
  for (const name of interfaces) assert.doesNotMatch(dts, new RegExp(`^export (interface|type) ${name}\\b`, 'm'))
})

test('every declared EventBus method and static exists on a live bus', async () => {
  const written = declaredMethods(classBody('EventBus'))
  const generated = declaredMethods(classBody('EventBus', native))
  const statics = [...written.statics, ...generated.statics]
  const methods = [...written.methods, ...generated.methods]
  // The spec's names, so a parser regression cannot make this test vacuous.
  for (const name of ['ingest', 'ingestRaw', 'ingestRawBatch', 'ingestPacked', 'poll', 'flush', 'shutdown',
    'addShards', 'removeShards', 'suggestScaling', 'stats', 'subscribe', 'pollPacked', 'subscribePacked']) {
    assert.ok(methods.includes(name), `index.d.ts declares ${name}`)
  }
  assert.deepEqual(statics, ['create'])
  for (const name of statics) assert.equal(typeof EventBus[name], 'function', `EventBus.${name}`)
  const bus = await EventBus.create({ adapter: { type: 'memory' } })
  try {
    for (const name of methods) assert.equal(typeof resolveName(bus, name), 'function', `bus.${name}()`)
    // The public surface has nothing undeclared (underscore names are internal).
    const proto = Object.getOwnPropertyNames(Object.getPrototypeOf(bus))
      .filter((n) => n !== 'constructor' && !n.startsWith('_'))
    for (const name of proto) assert.ok(methods.includes(name), `bus.${name} is not declared in index.d.ts`)
  } finally {
    await bus.shutdown()
  }
})

for (const [name, Class, subscribe] of [
  ['Subscription', Subscription, 'subscribe'],
  ['PackedSubscription', PackedSubscription, 'subscribePacked']
]) {
  test(`every declared ${name} method exists on a live subscription`, async () => {
    const { methods } = declaredMethods(classBody(name))
    assert.deepEqual(methods.sort(), ['[Symbol.asyncIterator]', 'next', 'return', 'throw'])
    const bus = await EventBus.create({ adapter: { type: 'memory' } })
    const sub = bus[subscribe]({ waitMs: 10 })
    assert.ok(sub instanceof Class)
    for (const name of methods) assert.equal(typeof resolveName(sub, name), 'function', `subscription.${name}()`)
    assert.ok('cursor' in sub)
    await sub.return()
    await bus.shutdown()
  })
}

test('every declared PackedPage member exists on a live page, and its view has the declared fields', async () => {
  const { methods } = declaredMethods(classBody('PackedPage'))
  assert.deepEqual(methods.sort(), ['[Symbol.iterator]', 'event', 'id', 'payload', 'start'])
  const fields = [...classBody('PackedPage').matchAll(/^\s*readonly (\w+):/gm)].map((m) => m[1])
  const viewFields = [...(/export interface PackedEventView \{([^]*?)\n\}/.exec(dts)[1]).matchAll(/^\s*readonly (\w+):/gm)]
    .map((m) => m[1])
  const bus = await EventBus.create({ adapter: { type: 'memory' } })
  try {
    bus.ingest({ a: 1 })
    await bus.flush()
    const page = await bus.pollPacked()
    assert.ok(page instanceof PackedPage)
    for (const name of methods) assert.equal(typeof resolveName(page, name), 'function', `page.${name}()`)
    for (const name of fields) assert.notEqual(page[name], undefined, `page.${name}`)
    const publicFields = Object.keys(page).filter((n) => !n.startsWith('_'))
    assert.deepEqual(publicFields.sort(), fields.slice().sort(), 'page fields match the declared ones')
    for (const view of page) {
      for (const name of viewFields) assert.notEqual(view[name], undefined, `view.${name}`)
      assert.equal(typeof view.event, 'function')
    }
  } finally {
    await bus.shutdown()
  }
})
