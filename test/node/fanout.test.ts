/**
 * The Node delivery path against a real server on loopback: frames built once per message,
 * slow consumers closed with 4008, per-socket order across sliced fan-outs, and a server
 * that keeps answering while a large fan-out is under way. No timing assertions: the
 * figures live in bench/.
 */
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { frameStats } from '../../adapters/node/frame.ts'
import type { RunningServer } from '../../adapters/node/server.ts'
import { startNode } from '../helpers/node-target.ts'
import { connect, eventually, type TestClient } from '../helpers/ws-client.ts'

const servers: RunningServer[] = []
const clients: TestClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
  for (const server of servers.splice(0)) await server.close(1000)
})

async function start(limits: Record<string, number>): Promise<RunningServer> {
  const server = await startNode({ limits })
  servers.push(server)
  return server
}

/** Connects a client, subscribes it and waits (ping/pong) until the server has the subscription. */
async function subscriber(server: RunningServer, ids: string[]): Promise<TestClient> {
  const client = await connect(`${server.url('client')}/~t/`)
  clients.push(client)
  client.send({ command: 'subscribe', data: ids })
  await client.ping()
  return client
}

/** Collects every frame a client gets from now on. */
function collect(client: TestClient): Record<string, unknown>[] {
  const frames: Record<string, unknown>[] = []
  client.ws.on('message', (data) => frames.push(JSON.parse(String(data))))
  return frames
}

async function post(server: RunningServer, body: Record<string, unknown>): Promise<Response> {
  const response = await fetch(`${server.url('admin')}/?instance=t`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  })
  await response.arrayBuffer()
  expect(response.status).toBe(200)
  return response
}

/** Records the order in which the server's hub published message keys. */
function publishOrder(server: RunningServer): { key: number; ids: readonly string[] }[] {
  const order: { key: number; ids: readonly string[] }[] = []
  const hub = server.tidings.hub
  const publish = hub.publish.bind(hub)
  hub.publish = (instance, subscribers, message) => {
    order.push({ key: (JSON.parse(message.text) as { key: number }).key, ids: subscribers })
    return publish(instance, subscribers, message)
  }
  return order
}

describe('Node fan-out', () => {
  it('builds one frame per message, not per recipient, and shares joined batches', async () => {
    const server = await start({ fanoutSlice: 16 })
    const fleet = await Promise.all(Array.from({ length: 60 }, () => subscriber(server, ['A'])))
    const received = fleet.map(collect)
    const frames = frameStats.frames
    const joins = frameStats.joins
    await Promise.all([1, 2, 3, 4, 5].map((key) => post(server, { key, subscribers: ['A'] })))
    await eventually(
      () => received.reduce((sum, list) => sum + list.length, 0),
      (n) => n === 300
    )
    expect(frameStats.frames - frames).toBe(5)
    // Sockets that got the same messages in a turn share one joined Buffer; one per socket
    // (60 or more) would mean per-recipient work came back.
    expect(frameStats.joins - joins).toBeLessThan(30)
    for (const list of received)
      expect(list.map((frame) => frame.key).sort()).toEqual([1, 2, 3, 4, 5])
  })

  it('keeps every socket in publish order across sliced fan-outs', async () => {
    const server = await start({ fanoutSlice: 3 })
    const subscriptions = [['A'], ['B'], ['A', 'B'], ['C']]
    const fleet = await Promise.all(
      Array.from({ length: 24 }, (_, i) => subscriber(server, subscriptions[i % 4] as string[]))
    )
    const received = fleet.map(collect)
    const order = publishOrder(server)
    const targets = [['A'], ['B'], ['A', 'B'], ['A', 'C'], ['B', 'C']]
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => {
          const key = round * 10 + i
          return post(server, { key, subscribers: targets[key % targets.length] })
        })
      )
    }
    const expected = fleet.map((_, i) =>
      order
        .filter(({ ids }) => ids.some((id) => (subscriptions[i % 4] as string[]).includes(id)))
        .map(({ key }) => key)
    )
    await eventually(
      () => received.map((list) => list.length),
      (lengths) => lengths.every((n, i) => n === expected[i]?.length)
    )
    received.forEach((list, i) => {
      expect(list.map((frame) => frame.key)).toEqual(expected[i])
    })
  })

  it('closes a client that stops reading with 4008, counts it, and keeps serving the others', async () => {
    const server = await start({ slowConsumerBytes: 256 * 1024 })
    const healthy = await subscriber(server, ['A'])
    const healthyFrames = collect(healthy)
    const stalled = await subscriber(server, ['A'])
    const stalledSocket = (stalled.ws as unknown as { _socket: import('node:net').Socket })._socket
    stalledSocket.pause()
    const pad = 'x'.repeat(64 * 1024)
    let sent = 0
    // The kernel takes a few MiB for a socket nobody reads; the cap applies beyond that.
    while (server.tidings.hub.stats.slowConsumerCloses === 0 && sent < 400) {
      await post(server, { key: sent++, subscribers: ['A'], pad })
    }
    expect(server.tidings.hub.stats.slowConsumerCloses).toBe(1)
    expect(server.tidings.status('t')['clients.active']).toBe(1)
    await post(server, { key: sent++, subscribers: ['A'] })
    await eventually(
      () => healthyFrames.length,
      (n) => n === sent,
      10_000
    )
    stalledSocket.resume()
    const closed = await Promise.race([
      stalled.closed,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('no close frame within 10 s')), 10_000)
      ),
    ])
    expect(closed.code).toBe(4008)
    expect(server.tidings.hub.stats.slowConsumerCloses).toBe(1)
  })

  it('answers pings, POSTs and status while a large fan-out is still being served', async () => {
    const server = await start({ fanoutSlice: 1 })
    const fleet = await Promise.all(Array.from({ length: 300 }, () => subscriber(server, ['A'])))
    const received = fleet.map(collect)
    const pinger = await subscriber(server, ['nobody'])
    const hub = server.tidings.hub
    // 300 sockets, one per turn: several hundred turns of queued work.
    await Promise.all(
      Array.from({ length: 8 }, (_, key) => post(server, { key, subscribers: ['A'] }))
    )
    expect(hub.backlog).toBeGreaterThan(0)

    const status = await fetch(`${server.url('admin')}/status/?instance=t`, {
      signal: AbortSignal.timeout(5000),
    })
    expect(status.status).toBe(200)
    await status.json()
    expect(hub.backlog).toBeGreaterThan(0)

    await pinger.ping()
    expect(hub.backlog).toBeGreaterThan(0)

    await eventually(
      () => received.reduce((sum, list) => sum + list.length, 0),
      (n) => n === 300 * 8,
      15_000
    )
    expect(hub.backlog).toBe(0)
    expect(fleet.every((client) => client.ws.readyState === WebSocket.OPEN)).toBe(true)
  })
})
