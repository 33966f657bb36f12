/**
 * `processes`: one node served by a primary (admin port, dedup, history, relay, backplane)
 * and worker processes holding the client sockets, with real processes on loopback.
 */
import type { Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import type { RunningServer } from '../../adapters/node/server.ts'
import { HEARTBEAT_MS, STALL_MS, SUSPECT_MS } from '../../adapters/node/worker-pool.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { cleanups } from '../helpers/cleanups.ts'
import { startNode } from '../helpers/node-target.ts'
import { OWED_MS } from '../helpers/patience.ts'
import { RedisServer, redisAvailable } from '../helpers/redis.ts'
import { connect, eventually, subscribedClient, type TestClient } from '../helpers/ws-client.ts'

const later = cleanups()

async function start(extra: Record<string, unknown> = {}): Promise<RunningServer> {
  const server = await startNode({ extra: { processes: 2, ...extra } })
  later(() => server.close(1000))
  return server
}

async function subscribed(server: RunningServer, ids: string[], path = '/'): Promise<TestClient> {
  const client = await subscribedClient(`${server.url('client')}${path}`, ids)
  later(() => client.close())
  return client
}

async function post(server: RunningServer, message: object, query = ''): Promise<number> {
  const response = await fetch(`${server.url('admin')}/${query}`, {
    method: 'POST',
    body: JSON.stringify(message),
  })
  await response.arrayBuffer()
  return response.status
}

const json = async (server: RunningServer, path: string) =>
  (await (await fetch(`${server.url('admin')}${path}`)).json()) as Record<string, unknown>

interface WorkerView {
  worker: number
  pid: number
  'clients.active': number
}

describe('processes: 2', { timeout: 60_000 }, () => {
  it('spreads sockets over the workers and reports the node as a whole, and per worker', async () => {
    const server = await start()
    const clients = await Promise.all([1, 2, 3, 4].map(() => subscribed(server, ['P'])))
    expect(await post(server, { key: 'k', text: 'Grüße 🚀', subscribers: ['P'] })).toBe(200)
    for (const client of clients)
      expect(await client.next()).toMatchObject({ key: 'k', text: 'Grüße 🚀' })
    const status = await json(server, '/status/')
    expect(status).toMatchObject({
      'clients.active': 4,
      'clients.total': 4,
      'messages.in': 1,
      'messages.out': 4,
    })
    const workers = status.workers as WorkerView[]
    expect(workers.map((w) => w['clients.active'])).toEqual([2, 2])
    expect(new Set(workers.map((w) => w.pid)).size).toBe(2)
    expect(workers.every((w) => w.pid !== process.pid)).toBe(true)
    const stats = await json(server, '/stats.json')
    expect(stats.totals).toMatchObject({ connections: 4, deliveries: 4 })
    const metrics = await (await fetch(`${server.url('admin')}/metrics`)).text()
    expect(metrics).toMatch(/\ntidings_worker_connections\{worker="1"\} 2\n/)
    expect(metrics).toMatch(/\ntidings_connections\{instance="default"\} 4\n/)
  })

  it("replays from the node's history, replaces a worker that dies, and reloads every worker", async () => {
    const server = await start()
    for (let i = 0; i < 3; i++) await post(server, { key: `h${i}`, subscribers: ['P'] })
    // Sockets that arrive later, on either worker, replay what was posted before them.
    const late = await Promise.all([1, 2].map(() => subscribed(server, ['P'])))
    for (const client of late) {
      client.send({ command: 'replay', data: { age: 60_000 } })
      expect(
        [await client.next(), await client.next(), await client.next()].map((f) => f.key)
      ).toEqual(['h0', 'h1', 'h2'])
    }
    const before = (await json(server, '/status/')).workers as WorkerView[]
    const victim = before[0] as WorkerView
    process.kill(victim.pid, 'SIGKILL')
    // Its socket is gone (the client reconnects elsewhere); a new worker takes its place.
    const closed = await Promise.race(late.map((client) => client.closed))
    expect(closed.code).toBe(1006)
    const after = await eventually(
      async () => (await json(server, '/status/')).workers as WorkerView[],
      (workers) => workers.length === 2 && workers.every((w) => w.pid !== victim.pid)
    )
    expect(after.map((w) => w.worker).sort()).toEqual([1, 2])
    const metrics = await (await fetch(`${server.url('admin')}/metrics`)).text()
    expect(metrics).toContain(`\ntidings_worker_restarts_total{worker="${victim.worker}"} 1\n`)
    const fresh = await Promise.all([1, 2].map(() => subscribed(server, ['P'])))
    await post(server, { key: 'after', subscribers: ['P'] })
    for (const client of fresh) expect((await client.next()).key).toBe('after')

    // A reload reaches the workers: a limit applied there.
    const report = server.reconfigure(
      parseConfig({
        ...server.node.config,
        limits: { ...server.node.config.limits, subscriptionsPerConnection: 1 },
      })
    )
    expect(report.applied).toContain('limits.subscriptionsPerConnection')
    for (let i = 0; i < 2; i++) {
      const client = await connect(`${server.url('client')}/`)
      later(() => client.close())
      client.send({ command: 'subscribe', data: ['A', 'B'] })
      expect((await client.closed).code).toBe(1008)
    }
  })

  it("keeps an instance's counters while only workers hold its sockets, and lets go when they die", async () => {
    // History ages out at once: only the sockets keep the instance alive.
    const server = await start({ history: { age: 0 } })
    const client = await subscribed(server, ['P'], '/~busy')
    for (let n = 0; n < 3; n++) await post(server, { n, subscribers: ['P'] }, '?instance=busy')
    for (let n = 0; n < 3; n++) expect((await client.next()).n).toBe(n)
    // Past several sweeps of the primary, which holds none of the sockets itself.
    await new Promise((resolve) => setTimeout(resolve, 2500))
    expect(await json(server, '/status/?instance=busy')).toMatchObject({
      'clients.active': 1,
      'messages.in': 3,
      'messages.out': 3,
    })
    // The worker holding the socket dies: nothing holds the instance any more.
    const holder = ((await json(server, '/status/?instance=busy')).workers as WorkerView[]).find(
      (w) => w['clients.active'] === 1
    ) as WorkerView
    process.kill(holder.pid, 'SIGKILL')
    await client.closed
    await eventually(
      async () => (await json(server, '/stats.json')).instances as { name: string }[],
      (instances) => !instances.some((instance) => instance.name === 'busy')
    )
  })

  it('sends new connections around a stuck worker, then replaces it', async () => {
    const server = await start()
    const before = (await json(server, '/status/')).workers as WorkerView[]
    const stuck = before[0] as WorkerView
    process.kill(stuck.pid, 'SIGSTOP')
    later(() => {
      try {
        process.kill(stuck.pid, 'SIGKILL')
      } catch {} // replaced already
    })
    // Silent for longer than SUSPECT_MS: new connections go to the other worker only.
    await new Promise((resolve) => setTimeout(resolve, SUSPECT_MS + HEARTBEAT_MS))
    const meanwhile = await Promise.all([1, 2, 3, 4].map(() => subscribed(server, ['P'])))
    expect(await post(server, { key: 'meanwhile', subscribers: ['P'] })).toBe(200)
    for (const client of meanwhile) expect((await client.next()).key).toBe('meanwhile')
    // Silent for STALL_MS: killed, and a new process takes its place.
    const after = await eventually(
      async () => (await json(server, '/status/')).workers as WorkerView[],
      (workers) => workers.length === 2 && workers.every((w) => w.pid !== stuck.pid),
      STALL_MS + 2 * HEARTBEAT_MS + OWED_MS
    )
    expect(after.map((w) => w.worker).sort()).toEqual([1, 2])
    const metrics = await (await fetch(`${server.url('admin')}/metrics`)).text()
    expect(metrics).toContain(`\ntidings_worker_restarts_total{worker="${stuck.worker}"} 1\n`)
    const fresh = await Promise.all([1, 2].map(() => subscribed(server, ['P'])))
    expect((await json(server, '/status/')).workers).toHaveLength(2)
    await post(server, { key: 'after', subscribers: ['P'] })
    for (const client of [...meanwhile, ...fresh]) expect((await client.next()).key).toBe('after')
  })

  it('does not take a stall of the primary itself for stuck workers', async () => {
    const server = await start()
    const client = await subscribed(server, ['P'])
    const before = (await json(server, '/status/')).workers as WorkerView[]
    // This process is the primary: block its event loop past STALL_MS (a long GC, a CPU hog).
    const until = Date.now() + STALL_MS + 2 * HEARTBEAT_MS
    while (Date.now() < until) {}
    await new Promise((resolve) => setTimeout(resolve, 3 * HEARTBEAT_MS))
    const after = (await json(server, '/status/')).workers as WorkerView[]
    expect(after.map((w) => w.pid).sort()).toEqual(before.map((w) => w.pid).sort())
    await post(server, { key: 'still', subscribers: ['P'] })
    expect((await client.next()).key).toBe('still')
  })

  it('answers a replay with no more history than the socket has room for', async () => {
    const budget = 64 * 1024
    const server = await start({ limits: { slowConsumerBytes: budget } })
    const payload = 'x'.repeat(20_000)
    for (let n = 0; n < 30; n++) await post(server, { n, payload, subscribers: ['P'] })
    // Four clients that never read ask for the whole history (about 600 KB) again and again.
    const attackers = await Promise.all(
      [1, 2, 3, 4].map(async () => {
        const client = await subscribedClient(`${server.url('client')}/`, ['P'])
        // It never reads, so it never sees a close either.
        later(() => client.ws.terminate())
        return client
      })
    )
    for (const attacker of attackers)
      (attacker.ws as unknown as { _socket: Socket })._socket.pause()
    for (let round = 0; round < 20; round++) {
      for (const attacker of attackers) attacker.send({ command: 'replay', data: { age: 60_000 } })
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const totals = await eventually(
      async () => (await json(server, '/stats.json')).totals as Record<string, number>,
      (t) => t.slowConsumerCloses === 4
    )
    expect(totals.replays).toBe(4)
    // What crossed to the workers: for each socket, what fit in its budget and one message more.
    const metrics = await (await fetch(`${server.url('admin')}/metrics`)).text()
    const shipped = [...metrics.matchAll(/\ntidings_worker_replay_bytes_total\{[^}]*\} (\d+)/g)]
    expect(shipped).toHaveLength(2)
    const bytes = shipped.reduce((sum, match) => sum + Number(match[1]), 0)
    expect(bytes).toBeGreaterThan(0)
    expect(bytes).toBeLessThanOrEqual(4 * (budget + 20_100))
    // The node serves everyone else as before.
    const bystander = await subscribed(server, ['P'])
    await post(server, { key: 'after', subscribers: ['P'] })
    expect((await bystander.next()).key).toBe('after')
  })

  it.skipIf(!redisAvailable())(
    'meets other nodes on the backplane once per node, for sockets on any worker',
    async () => {
      const redis = await RedisServer.start()
      later(() => redis.dispose())
      const backplane = { type: 'redis', url: redis.url, routing: 'subscriber' }
      const a = await start({ backplane })
      const b = await start({ backplane })
      const onA = await Promise.all([1, 2].map(() => subscribed(a, ['P'])))
      const onB = await Promise.all([1, 2].map((i) => subscribed(b, ['P', `Q${i}`])))
      await eventually(
        () => b.node.backplane?.interest.size,
        (size) => size === 3
      )
      await post(a, { key: 'x', subscribers: ['P', 'Q1'] })
      for (const client of [...onA, ...onB]) {
        expect((await client.next()).key).toBe('x')
        await client.silence()
      }
      // The node heard it on its two channels (P, Q1) and delivered it once, to whichever
      // workers hold the sockets.
      expect(b.node.backplane?.stats.received).toBe(2)
      expect(b.node.tidings.duplicates).toBe(1)
      // b does not hear R (no socket of it wants R); one that arrives later replays it from
      // the shared history, through the primary.
      expect(await post(a, { key: 'r', subscribers: ['R'] })).toBe(200)
      const moved = await subscribed(b, ['R'])
      moved.send({ command: 'replay', data: { age: 60_000 } })
      expect((await moved.next()).key).toBe('r')
      await moved.silence()
      expect(b.node.backplane?.stats.sharedReplays).toBe(1)
    }
  )
})
