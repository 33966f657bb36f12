/**
 * Every key src/node/reconfigure.ts calls live, shown taking effect: a node started with one
 * value, then reconfigured to another, behaves by the new one — observed from outside (what a
 * client or publisher gets), never by reading the option back. `websocket.heartbeat` and
 * `logs` belong to the Node process (test/node/ops.test.ts and ops-reload.test.ts).
 */
import { describe, expect, it } from 'vitest'
import { RequestError } from '../../src/errors.ts'
import { outboundFromValue } from '../../src/hub/outbound.ts'
import type { TidingsNode } from '../../src/node/node.ts'
import { LIVE_KEYS } from '../../src/node/reconfigure.ts'
import { FakeTime, FakeTransport, receipt, settle } from '../helpers/cluster-fakes.ts'
import { FakeSocket, nodeConfig, testNode } from '../helpers/fakes.ts'

interface Env {
  node: TidingsNode
  time: FakeTime
  transport: FakeTransport
  run(): void
}

type Probe = (env: Env) => boolean | Promise<boolean>

let serial = 0
const fresh = (prefix: string): string => `${prefix}-${++serial}`

function subscriber(env: Env, ids: string[] = ['P'], instance = 'default') {
  const socket = new FakeSocket()
  const connection = env.node.open(socket, instance)
  env.node.tidings.hub.subscribe(connection, ids)
  return { socket, connection }
}

const frame = (env: Env, socket: FakeSocket, text: string): void => {
  const connection = env.node.open(socket, 'default')
  env.node.frame(connection, text)
}

async function post(env: Env, body: unknown, instance = 'default', headers = {}): Promise<number> {
  const response = await env.node.admin.request(`/?instance=${instance}`, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers,
  })
  return response.status
}

const refused = (value: unknown): boolean => value instanceof RequestError

/** key → [config before, config after, what shows the after value in force]. */
const CASES: Record<string, [Record<string, unknown>, Record<string, unknown>, Probe]> = {
  'history.size': [
    { history: { size: 10 } },
    { history: { size: 1 } },
    (env) => {
      const instance = fresh('h')
      for (let n = 0; n < 2; n++)
        env.node.tidings.hub.publish(instance, [], outboundFromValue({ n }))
      return env.node.tidings.hub.find(instance)?.history.size === 1
    },
  ],
  'history.age': [
    { history: { age: 60_000 } },
    { history: { age: 1000 } },
    (env) => {
      const instance = fresh('h')
      env.node.tidings.hub.publish(instance, [], outboundFromValue({}))
      env.time.time += 2000
      env.node.tick()
      return (env.node.tidings.hub.find(instance)?.history.size ?? 0) === 0
    },
  ],
  'history.bytes': [
    { history: { bytes: 1 << 20 } },
    { history: { bytes: 1000 } },
    (env) => {
      const instance = fresh('h')
      for (let n = 0; n < 5; n++) {
        env.node.tidings.hub.publish(instance, [], outboundFromValue({ pad: 'x'.repeat(300) }))
      }
      return (env.node.tidings.hub.find(instance)?.history.bytes ?? 0) <= 1000
    },
  ],
  'limits.bodyBytes': [
    { limits: { bodyBytes: 4096 } },
    { limits: { bodyBytes: 64 } },
    async (env) => (await post(env, { subscribers: [], pad: 'x'.repeat(200) })) === 413,
  ],
  'limits.bodyDepth': [
    { limits: { bodyDepth: 32 } },
    { limits: { bodyDepth: 2 } },
    async (env) => (await post(env, '{"subscribers":[],"x":[[1]]}')) === 400,
  ],
  'limits.fanoutBacklog': [
    { limits: { fanoutSlice: 1, fanoutBacklog: 1000 } },
    { limits: { fanoutSlice: 1, fanoutBacklog: 1 } },
    async (env) => {
      const id = fresh('P')
      for (let i = 0; i < 3; i++) subscriber(env, [id])
      await post(env, { subscribers: [id] })
      const status = await post(env, { subscribers: [] })
      env.run()
      return status === 503
    },
  ],
  'limits.fanoutSlice': [
    { limits: { fanoutSlice: 2048 } },
    { limits: { fanoutSlice: 1 } },
    (env) => {
      const id = fresh('P')
      const sockets = Array.from({ length: 3 }, () => subscriber(env, [id]).socket)
      env.node.tidings.hub.publish('default', [id], outboundFromValue({}))
      const now = sockets.filter((socket) => socket.sent.length > 0).length
      env.run()
      return now < 3
    },
  ],
  'limits.instances': [
    { limits: { instances: 100 } },
    { limits: { instances: 1 } },
    async (env) => {
      await post(env, { subscribers: [] }, fresh('i'))
      return (await post(env, { subscribers: [] }, fresh('i'))) === 503
    },
  ],
  'limits.historyBytes': [
    { limits: { historyBytes: 1 << 20 } },
    { limits: { historyBytes: 1000 } },
    (env) => {
      for (let n = 0; n < 5; n++) {
        env.node.tidings.hub.publish(fresh('h'), [], outboundFromValue({ pad: 'x'.repeat(300) }))
      }
      return env.node.tidings.hub.ledger.bytes <= 1000
    },
  ],
  'limits.frameBytes': [
    { limits: { frameBytes: 4096 } },
    { limits: { frameBytes: 100 } },
    (env) => {
      const socket = new FakeSocket()
      frame(env, socket, JSON.stringify({ command: 'ping', data: 'x'.repeat(200) }))
      return socket.closed?.code === 1009
    },
  ],
  'limits.framesPerSecond': [
    { limits: { framesPerSecond: 100 } },
    { limits: { framesPerSecond: 1 } },
    (env) => {
      const socket = new FakeSocket()
      const connection = env.node.open(socket, 'default')
      env.node.frame(connection, '{"command":"ping"}')
      env.node.frame(connection, '{"command":"ping"}')
      return socket.closed?.code === 1008
    },
  ],
  'limits.idBytes': [
    { limits: { idBytes: 256 } },
    { limits: { idBytes: 16 } },
    (env) => {
      const socket = new FakeSocket()
      frame(env, socket, JSON.stringify({ command: 'subscribe', data: ['x'.repeat(20)] }))
      return socket.closed?.reason === 'id_too_long'
    },
  ],
  'limits.subscriptionsPerConnection': [
    { limits: { subscriptionsPerConnection: 10 } },
    { limits: { subscriptionsPerConnection: 1 } },
    (env) => {
      const socket = new FakeSocket()
      frame(env, socket, JSON.stringify({ command: 'subscribe', data: ['a', 'b'] }))
      return socket.closed?.reason === 'subscription_limit'
    },
  ],
  'limits.subscriptionBytes': [
    { limits: { subscriptionBytes: 65_536 } },
    { limits: { subscriptionBytes: 1024 } },
    (env) => {
      const socket = new FakeSocket()
      const ids = Array.from({ length: 10 }, (_, i) => `${i}`.padEnd(200, 'y'))
      frame(env, socket, JSON.stringify({ command: 'subscribe', data: ids }))
      return socket.closed?.reason === 'subscription_bytes'
    },
  ],
  'limits.slowConsumerBytes': [
    { limits: { slowConsumerBytes: 1 << 20 } },
    { limits: { slowConsumerBytes: 1024 } },
    (env) => {
      const id = fresh('P')
      const { socket } = subscriber(env, [id])
      socket.pending = 1000
      env.node.tidings.hub.publish('default', [id], outboundFromValue({ pad: 'x'.repeat(100) }))
      return socket.closed?.reason === 'slow_consumer'
    },
  ],
  'limits.outputBytes': [
    { limits: { outputBytes: 256 << 20 } },
    { limits: { outputBytes: 1 << 20 } },
    (env) => {
      const id = fresh('P')
      const sockets = [subscriber(env, [id]).socket, subscriber(env, [id]).socket]
      for (const socket of sockets) socket.pending = 700 * 1024
      env.node.tidings.hub.publish('default', [id], outboundFromValue({}))
      env.node.tidings.hub.output.enforce()
      return sockets.some((socket) => socket.closed?.reason === 'output_budget')
    },
  ],
  'limits.handshakesPerIp': [
    { limits: { handshakesPerIp: 10 } },
    { limits: { handshakesPerIp: 1 } },
    (env) => {
      const peer = `198.51.100.${++serial % 250}`
      env.node.accept(peer, {})
      return refused(env.node.accept(peer, {}))
    },
  ],
  'limits.handshakeTimeout': [
    { limits: { handshakeTimeout: 10_000 } },
    { limits: { handshakeTimeout: 100 } },
    (env) => {
      const handle = {}
      env.node.accept(`198.51.100.${++serial % 250}`, handle)
      env.time.time += 200
      const expired: unknown[] = []
      env.node.tick((lease) => expired.push(lease.handle))
      return expired.includes(handle)
    },
  ],
  'limits.connectionsPerIp': [
    { limits: { connectionsPerIp: 0 } },
    { limits: { connectionsPerIp: 1 } },
    (env) => {
      const peer = `198.51.101.${++serial % 250}`
      env.node.accept(peer, {})
      return refused(env.node.accept(peer, {}))
    },
  ],
  'limits.connectionsPerSecond': [
    { limits: { connectionsPerSecond: 0 } },
    { limits: { connectionsPerSecond: 1 } },
    (env) => {
      const peer = `198.51.102.${++serial % 250}`
      env.node.accept(peer, {})
      return refused(env.node.accept(peer, {}))
    },
  ],
  'limits.connections': [
    { limits: { connections: 1000 } },
    { limits: { connections: 1 } },
    (env) => {
      env.node.accept(`198.51.103.${++serial % 250}`, {})
      return refused(env.node.accept(`198.51.103.${++serial % 250}`, {}))
    },
  ],
  'relay.queue': [
    { relay: { queue: 100 } },
    { relay: { queue: 1 } },
    (env) => {
      for (let n = 0; n < 3; n++) env.node.tidings.ingest('default', message({ n }))
      return env.node.relay?.status()[0]?.queue === 1
    },
  ],
  'relay.queueBytes': [
    { relay: { queueBytes: 1 << 20 } },
    { relay: { queueBytes: 1024 } },
    (env) => {
      for (let n = 0; n < 3; n++)
        env.node.tidings.ingest('default', message({ pad: 'x'.repeat(600) }))
      return env.node.relay?.status()[0]?.queue === 1
    },
  ],
  'relay.maxAge': [
    { relay: { maxAge: 30_000 } },
    { relay: { maxAge: 1000 } },
    (env) => {
      const dropped = env.node.relay?.status()[0]?.dropped ?? 0
      env.node.tidings.ingest('default', message({}))
      env.time.time += 2000
      env.node.tidings.ingest('default', message({}))
      return (env.node.relay?.status()[0]?.dropped ?? 0) > dropped
    },
  ],
  'relay.failures': [
    { relay: { failures: 3 } },
    { relay: { failures: 1 } },
    async (env) => {
      env.transport.auto = () => new Error('connect ECONNREFUSED')
      env.node.tidings.ingest('default', message({}))
      env.run()
      await env.time.advance(0)
      return env.node.relay?.status()[0]?.state === 'down'
    },
  ],
  'relay.retryBase': [
    { relay: { retryBase: 1, retryMax: 1 } },
    { relay: { retryBase: 100_000, retryMax: 100_000 } },
    async (env) => {
      env.transport.auto = () => new Error('connect ECONNREFUSED')
      env.node.tidings.ingest('default', message({}))
      env.run()
      await env.time.advance(0)
      // Full jitter in [0, 100000]: a delay over 1 ms (odds of 1 in 100,000 against).
      return env.time.delays().some((delay) => delay > 1)
    },
  ],
  'relay.retryMax': [
    { relay: { retryBase: 1, retryMax: 1 } },
    { relay: { retryBase: 1, retryMax: 100_000 } },
    async (env) => {
      env.transport.auto = () => new Error('connect ECONNREFUSED')
      for (let i = 0; i < 20; i++) {
        env.node.tidings.ingest('default', message({}))
        env.run()
        await env.time.advance(0)
        await env.time.advance(Math.max(0, ...env.time.delays().filter((d) => d < 1000)))
      }
      return env.time.delays().some((delay) => delay > 1)
    },
  ],
  'relay.flushTimeout': [
    { relay: { flushTimeout: 60_000 } },
    { relay: { flushTimeout: 50 } },
    async (env) => {
      // A peer that never answers: closing waits for the flush until the timeout.
      env.transport.auto = undefined
      env.node.tidings.ingest('default', message({}))
      env.run()
      let closed = false
      void env.node.close().then(() => {
        closed = true
      })
      await env.time.advance(100)
      await settle()
      return closed
    },
  ],
  'relay.trustLoopback': [
    { secret: 's', relay: { trustLoopback: false } },
    { secret: 's', relay: { trustLoopback: true } },
    async (env) => (await post(env, { subscribers: [] })) === 200,
  ],
  'drain.window': [
    { drain: { window: 10_000 } },
    { drain: { window: 100 } },
    (env) => {
      for (let i = 0; i < 4; i++) subscriber(env)
      void env.node.drain()
      return Math.max(...env.time.delays()) <= 100
    },
  ],
  'drain.waves': [
    { drain: { waves: 20 } },
    { drain: { waves: 1 } },
    (env) => {
      for (let i = 0; i < 4; i++) subscriber(env)
      void env.node.drain()
      return env.time.delays().length === 1
    },
  ],
}

function message(value: Record<string, unknown>) {
  const body = JSON.stringify({ subscribers: [], uniqueID: fresh('u'), ...value })
  return {
    value: JSON.parse(body),
    subscribers: [],
    touched: [],
    uniqueId: JSON.parse(body).uniqueID,
  }
}

const CLUSTER = [{ host: 'peer.example', port: 22281, protocol: 'http' }]

function env(config: Record<string, unknown>): Env {
  const time = new FakeTime()
  const transport = new FakeTransport()
  transport.auto = () => receipt('PEERPEERPEERPEER')
  const { node, scheduler } = testNode(
    { cluster: CLUSTER, ...config },
    { clock: time as never, timers: time, transport, runtime: { remoteAddress: () => '127.0.0.1' } }
  )
  return { node, time, transport, run: () => scheduler.runAll() }
}

describe('reload: every live key takes effect', () => {
  it('has a case for every live key the core declares', () => {
    const declared = Object.entries(LIVE_KEYS).flatMap(([section, keys]) =>
      keys.map((key) => `${section}.${String(key)}`)
    )
    const elsewhere = ['websocket.heartbeat']
    expect(declared.filter((key) => !(key in CASES) && !elsewhere.includes(key))).toEqual([])
  })

  for (const [key, [before, after, probe]] of Object.entries(CASES)) {
    it(`${key}: the new value is in force after reconfigure`, async () => {
      const e = env(before)
      expect(await probe(env(before)), `${key} with its first value`).toBe(false)
      const report = e.node.reconfigure(nodeConfig({ cluster: CLUSTER, ...after }))
      expect(report.applied).toContain(key)
      expect(report.restartNeeded).toEqual([])
      expect(await probe(e), `${key} after the reload`).toBe(true)
    })
  }
})
