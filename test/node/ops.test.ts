/**
 * The operations endpoints of a real Node server (in-process, loopback, port 0): /metrics
 * read with a Prometheus text parser while real sockets and relays move the figures,
 * readiness during an in-process drain, and live reconfiguration.
 */
import parsePrometheus, { type ParsedFamily } from 'parse-prometheus-text-format'
import { afterEach, describe, expect, it } from 'vitest'
import type { RunningServer } from '../../adapters/node/server.ts'
import { rawRequest, upgradeRequest } from '../../scripts/hardening/attacks.ts'
import { sleep } from '../../scripts/hardening/node.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { loopbackConfig, startNode } from '../helpers/node-target.ts'
import { HANDSHAKE_MS } from '../helpers/patience.ts'
import { connect, eventually, type TestClient } from '../helpers/ws-client.ts'

const servers: RunningServer[] = []
const clients: TestClient[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate()
  await Promise.all(servers.splice(0).map((server) => server.close(1000)))
})

async function start(extra: Record<string, unknown> = {}): Promise<RunningServer> {
  const server = await startNode({ extra })
  servers.push(server)
  return server
}

async function client(server: RunningServer, path = '/'): Promise<TestClient> {
  const c = await connect(`${server.url('client')}${path}`)
  clients.push(c)
  return c
}

async function scrape(server: RunningServer): Promise<ParsedFamily[]> {
  const response = await fetch(`${server.url('admin')}/metrics`)
  expect(response.status).toBe(200)
  return parsePrometheus(await response.text())
}

function sample(
  families: ParsedFamily[],
  name: string,
  labels: Record<string, string> = {}
): number | undefined {
  const metric = families
    .find((f) => f.name === name)
    ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
  return metric?.value === undefined ? undefined : Number(metric.value)
}

function post(server: RunningServer, body: unknown, instance?: string): Promise<Response> {
  const query = instance ? `?instance=${instance}` : ''
  return fetch(`${server.url('admin')}/${query}`, { method: 'POST', body: JSON.stringify(body) })
}

describe('operations endpoints on a Node server', { timeout: 30_000 }, () => {
  it('scrapes /metrics whose values follow real sockets and messages', async () => {
    const server = await start()
    let families = await scrape(server)
    expect(sample(families, 'tidings_deliveries_total')).toBe(0)
    expect(sample(families, 'tidings_ready')).toBe(1)

    const a = await client(server)
    const b = await client(server)
    const other = await client(server, '/~beta/')
    a.send({ command: 'subscribe', data: ['PHID-1', 'PHID-2'] })
    b.send({ command: 'subscribe', data: ['PHID-1'] })
    await a.ping()
    await b.ping()
    families = await scrape(server)
    expect(sample(families, 'tidings_connections', { instance: 'default' })).toBe(2)
    expect(sample(families, 'tidings_connections', { instance: 'beta' })).toBe(1)
    expect(sample(families, 'tidings_subscriptions', { instance: 'default' })).toBe(3)

    for (let i = 0; i < 5; i++) {
      expect((await post(server, { key: String(i), subscribers: ['PHID-1'] })).status).toBe(200)
    }
    for (let i = 0; i < 5; i++) {
      await a.next()
      await b.next()
    }
    other.sendRaw('{not json')
    await other.close()
    families = await scrape(server)
    expect(sample(families, 'tidings_messages_in_total', { instance: 'default' })).toBe(5)
    expect(sample(families, 'tidings_messages_out_total', { instance: 'default' })).toBe(10)
    expect(sample(families, 'tidings_deliveries_total')).toBe(10)
    expect(sample(families, 'tidings_rejected_frames_total')).toBe(1)
    expect(sample(families, 'tidings_connections', { instance: 'beta' })).toBe(0)
    expect(sample(families, 'tidings_connections_accepted_total', { instance: 'beta' })).toBe(1)

    // Node's own figures.
    expect(sample(families, 'tidings_process_resident_memory_bytes')).toBeGreaterThan(1_000_000)
    expect(sample(families, 'tidings_process_heap_used_bytes')).toBeGreaterThan(0)
    const cpu = sample(families, 'tidings_process_cpu_seconds_total', { mode: 'user' })
    expect(cpu).toBeGreaterThan(0)
    const loop = families.find((f) => f.name === 'tidings_event_loop_delay_seconds')
    expect(loop?.type).toBe('SUMMARY')
    expect(Object.keys(loop?.metrics[0]?.quantiles ?? {})).toEqual(['0.5', '0.9', '0.99'])
  })

  it('answers /healthz and /readyz to GET and HEAD, and /readyz 503 while draining', async () => {
    const server = await start()
    const admin = server.url('admin')
    for (const method of ['GET', 'HEAD']) {
      expect((await fetch(`${admin}/healthz`, { method })).status).toBe(200)
      expect((await fetch(`${admin}/readyz`, { method })).status).toBe(200)
    }
    const sockets = await Promise.all([client(server), client(server), client(server)])
    const drained = server.drain({ windowMs: 600, waves: 3 })
    expect(server.draining).toBe(true)
    const ready = await fetch(`${admin}/readyz`)
    expect(ready.status).toBe(503)
    expect(await ready.json()).toEqual({ status: 'draining' })
    expect((await fetch(`${admin}/healthz`)).status).toBe(200)
    await expect(connect(`${server.url('client')}/`, 1000)).rejects.toThrow()
    for (const socket of sockets) {
      expect(await socket.closed).toEqual({ code: 4000, reason: 'draining' })
    }
    await drained
    await expect(fetch(`${admin}/healthz`)).rejects.toThrow()
  })

  it('shows relays to a cluster peer: sent, latency, state, and failures once it is gone', async () => {
    const peer = await start()
    const peerAdmin = new URL(peer.url('admin'))
    const origin = await start({
      cluster: [{ host: '127.0.0.1', port: Number(peerAdmin.port), protocol: 'http' }],
      relay: { retryBase: 10, retryMax: 50, failures: 2, timeout: 1000 },
    })
    const label = { peer: `http://127.0.0.1:${peerAdmin.port}` }
    const listener = await client(peer)
    listener.send({ command: 'subscribe', data: ['PHID-R'] })
    await listener.ping()

    for (let i = 0; i < 3; i++) await post(origin, { key: `r${i}`, subscribers: ['PHID-R'] })
    for (let i = 0; i < 3; i++) expect(await listener.next()).toMatchObject({ key: `r${i}` })
    const families = await eventually(
      () => scrape(origin),
      (f) => sample(f, 'tidings_relay_sent_total', label) === 3
    )
    expect(sample(families, 'tidings_relay_peer_up', label)).toBe(1)
    expect(sample(families, 'tidings_relay_peer_state', { ...label, state: 'up' })).toBe(1)
    expect(sample(families, 'tidings_relay_queue_messages', label)).toBe(0)
    expect(sample(families, 'tidings_relay_failed_total', label)).toBe(0)
    const text = await (await fetch(`${origin.url('admin')}/metrics`)).text()
    expect(text).toContain(
      `tidings_relay_latency_seconds_count{peer="http://127.0.0.1:${peerAdmin.port}"} 3\n`
    )
    const stats = await (await fetch(`${origin.url('admin')}/stats.json`)).json()
    expect(stats.peers).toMatchObject([{ peer: label.peer, state: 'up', up: true, sent: 3 }])

    await peer.close(1000)
    servers.splice(servers.indexOf(peer), 1)
    for (let i = 0; i < 3; i++) await post(origin, { key: `gone${i}`, subscribers: ['PHID-R'] })
    const after = await eventually(
      () => scrape(origin),
      (f) => sample(f, 'tidings_relay_peer_state', { ...label, state: 'down' }) === 1,
      10_000
    )
    expect(sample(after, 'tidings_relay_peer_up', label)).toBe(0)
    expect(sample(after, 'tidings_relay_failed_total', label)).toBeGreaterThanOrEqual(2)
    expect(sample(after, 'tidings_relay_peer_consecutive_failures', label)).toBeGreaterThanOrEqual(
      2
    )
    expect(sample(after, 'tidings_relay_sent_total', label)).toBe(3)
  })

  it('reconfigures limits, history and drain live and names what needs a restart', async () => {
    const server = await start({ limits: { subscriptionsPerConnection: 10, bodyBytes: 4096 } })
    const next = parseConfig(
      loopbackConfig({
        limits: { subscriptionsPerConnection: 2, bodyBytes: 64 },
        history: { size: 1 },
        drain: { window: 1234 },
        pidfile: '/tmp/other.pid',
      })
    )
    next.servers[0] = { ...next.servers[0], port: 1 } as (typeof next.servers)[0]
    const changes = server.reconfigure(next)
    expect(changes.applied).toEqual(
      expect.arrayContaining([
        'limits.subscriptionsPerConnection',
        'limits.bodyBytes',
        'history.size',
        'drain.window',
      ])
    )
    expect(changes.restartNeeded).toEqual(['servers', 'pidfile'])

    const c = await client(server)
    c.send({ command: 'subscribe', data: ['a', 'b', 'c'] })
    expect((await c.closed).code).toBe(1008)
    const big = await post(server, { subscribers: ['x'], pad: 'y'.repeat(100) })
    expect(big.status).toBe(413)
    await post(server, { subscribers: ['x'] }, 'h')
    await post(server, { subscribers: ['x'] }, 'h')
    const status = await (await fetch(`${server.url('admin')}/status/?instance=h`)).json()
    expect(status['history.size']).toBe(1)
  })

  it('reconfigures websocket.heartbeat live: a socket that answers no ping is then dropped', async () => {
    const server = await start()
    const port = Number(new URL(server.url('client')).port)
    // A raw upgrade: unlike a ws client, it never answers a ping.
    const silent = async (): Promise<number> => {
      const reply = await rawRequest(port, upgradeRequest('/'), HANDSHAKE_MS)
      expect(reply.answer).toMatch(/^HTTP\/1\.1 101 /)
      const started = Date.now()
      await new Promise((resolve) => reply.socket.once('close', resolve))
      return Date.now() - started
    }
    const before = await Promise.race([silent(), sleep(1000).then(() => 'open')])
    expect(before).toBe('open')
    const next = parseConfig(loopbackConfig({ websocket: { heartbeat: 100 } }))
    expect(server.reconfigure(next).applied).toEqual(['websocket.heartbeat'])
    // Dropped at the second ping it did not answer: about 200 ms, at most a few seconds.
    expect(await silent()).toBeLessThan(5000)
  })
})
