/**
 * Every limit, against a real Node server on loopback: what a client that breaks it gets.
 * (The contract suite covers the same close codes on every adapter; this file adds the
 * admission limits, which only the Node adapter has, and the counters.)
 */
import type { IncomingMessage } from 'node:http'
import { connect as netConnect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { type RunningServer, startServer } from '../../adapters/node/server.ts'
import { handleFrame } from '../../src/client/frames.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { outboundFromValue } from '../../src/hub/outbound.ts'
import { Tidings } from '../../src/tidings.ts'
import { FakeClock, FakeSocket, ManualScheduler, RecordingLogger } from '../helpers/fakes.ts'
import { loopbackConfig } from '../helpers/node-target.ts'
import { HANDSHAKE_MS } from '../helpers/patience.ts'
import { connect, eventually, type TestClient } from '../helpers/ws-client.ts'

interface Refused {
  status: number
  retryAfter: string | undefined
  body: { error: { code: string; message: string } }
}

/** Attempts an upgrade that must be refused; resolves with the HTTP answer. */
function refusedUpgrade(url: string, headers: Record<string, string> = {}): Promise<Refused> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    const timer = setTimeout(() => reject(new Error('no answer within 3 s')), 3000)
    ws.once('open', () => {
      clearTimeout(timer)
      ws.close()
      reject(new Error('the upgrade was accepted'))
    })
    ws.once('error', () => {})
    ws.once('unexpected-response', (_request, response: IncomingMessage) => {
      let text = ''
      response.on('data', (chunk: Buffer) => {
        text += chunk
      })
      response.on('end', () => {
        clearTimeout(timer)
        resolve({
          status: response.statusCode ?? 0,
          retryAfter: response.headers['retry-after'],
          body: JSON.parse(text),
        })
      })
    })
  })
}

const servers: RunningServer[] = []
const clients: TestClient[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close()
  for (const server of servers.splice(0)) await server.close(1000)
})

async function start(extra: Record<string, unknown>, clock?: FakeClock) {
  const logger = new RecordingLogger()
  const config = parseConfig(loopbackConfig(extra))
  const server = await startServer({ config, logger, ...(clock ? { clock } : {}) })
  servers.push(server)
  return { server, logger, url: server.url('client'), admin: server.url('admin') }
}

async function open(url: string, headers?: Record<string, string>): Promise<TestClient> {
  const client = await connect(url, HANDSHAKE_MS, headers)
  clients.push(client)
  return client
}

describe('limits on the client port', () => {
  it('refuses more than limits.connectionsPerIp open connections with 429 too_many_connections', async () => {
    const { server, url, logger } = await start({ limits: { connectionsPerIp: 2 } })
    const first = await open(`${url}/`)
    await open(`${url}/~other/`)
    const refused = await refusedUpgrade(`${url}/`)
    expect(refused.status).toBe(429)
    expect(refused.retryAfter).toBe('10')
    expect(refused.body.error).toEqual({
      code: 'too_many_connections',
      message: 'Too many open connections from this address (limit 2, "limits.connectionsPerIp").',
    })
    expect(server.tidings.limited.connectionsPerIp).toBe(1)
    const metrics = await (await fetch(`${server.url('admin')}/metrics`)).text()
    expect(metrics).toContain('tidings_limit_refusals_total{limit="connections_per_ip"} 1\n')
    expect(metrics).toContain('tidings_limit_refusals_total{limit="frames_per_second"} 0\n')

    expect(logger.lines.filter((line) => line.includes('connectionsPerIp'))).toEqual([
      'warn: Refused client connection [127.0.0.1]: 2 connections already open from this address ("limits.connectionsPerIp").',
    ])
    // A closed connection frees its place.
    await first.close()
    await eventually(
      async () => {
        try {
          await open(`${url}/`)
          return true
        } catch {
          return false
        }
      },
      (ok) => ok
    )
  })

  it('refuses more than limits.connectionsPerSecond new connections with 429 rate_limited', async () => {
    const clock = new FakeClock(5_000_000)
    const { server, url } = await start({ limits: { connectionsPerSecond: 3 } }, clock)
    for (let i = 0; i < 3; i++) await open(`${url}/`)
    const refused = await refusedUpgrade(`${url}/`)
    expect(refused.status).toBe(429)
    expect(refused.retryAfter).toBe('1')
    expect(refused.body.error.code).toBe('rate_limited')
    expect(refused.body.error.message).toBe(
      'Too many new connections from this address (limit 3 per second, "limits.connectionsPerSecond"); retry later.'
    )
    expect(server.tidings.limited.connectionsPerSecond).toBe(1)
    // A third of a second later one more fits, and only one.
    clock.advance(334)
    await open(`${url}/`)
    expect((await refusedUpgrade(`${url}/`)).status).toBe(429)
  })

  it('counts per client address from X-Forwarded-For only when the peer is a trusted proxy', async () => {
    const trusted = await start({
      limits: { connectionsPerIp: 1, trustedProxies: ['127.0.0.0/8'] },
    })
    await open(`${trusted.url}/`, { 'X-Forwarded-For': '203.0.113.1' })
    await open(`${trusted.url}/`, { 'X-Forwarded-For': '203.0.113.2' })
    // The rightmost address is the one the proxy saw; what the client wrote before it is not trusted.
    const spoofed = await refusedUpgrade(`${trusted.url}/`, {
      'X-Forwarded-For': '198.51.100.7, 203.0.113.1',
    })
    expect(spoofed.body.error.code).toBe('too_many_connections')

    const untrusted = await start({ limits: { connectionsPerIp: 1 } })
    await open(`${untrusted.url}/`, { 'X-Forwarded-For': '203.0.113.1' })
    const refused = await refusedUpgrade(`${untrusted.url}/`, { 'X-Forwarded-For': '203.0.113.2' })
    expect(refused.status).toBe(429)
  })

  it('refuses an Origin not in "origins" with 403 origin_not_allowed', async () => {
    const { server, url } = await start({ origins: ['https://phorge.example.org'] })
    const refused = await refusedUpgrade(`${url}/`, { Origin: 'https://evil.example' })
    expect(refused.status).toBe(403)
    expect(refused.body.error).toEqual({
      code: 'origin_not_allowed',
      message:
        'Origin "https://evil.example" may not open client connections here (see "origins" in the configuration).',
    })
    expect(server.tidings.limited.origin).toBe(1)
    const allowed = await open(`${url}/`, { Origin: 'https://phorge.example.org' })
    await allowed.ping()
    // Non-browser clients send no Origin; the list is a browser guard, not authentication.
    await (await open(`${url}/`)).ping()
  })

  it('accepts any Origin when "origins" is not set', async () => {
    const { url } = await start({})
    await (await open(`${url}/`, { Origin: 'https://anywhere.example' })).ping()
  })

  it('closes a connection past limits.subscriptionsPerConnection with 1008', async () => {
    const { server, url } = await start({ limits: { subscriptionsPerConnection: 2 } })
    const client = await open(`${url}/`)
    client.send({ command: 'subscribe', data: ['a', 'b', 'c'] })
    expect(await client.closed).toEqual({ code: 1008, reason: 'subscription_limit' })
    expect(server.tidings.limited.subscriptionsPerConnection).toBe(1)
  })

  it('closes a connection that sends a frame over limits.frameBytes with 1009', async () => {
    const { server, url } = await start({ limits: { frameBytes: 1024 } })
    const client = await open(`${url}/`)
    client.sendRaw(JSON.stringify({ command: 'subscribe', data: ['x'.repeat(2000)] }))
    expect((await client.closed).code).toBe(1009)
    await eventually(
      () => server.tidings.limited.frameBytes,
      (count) => count === 1
    )
  })

  it('closes a connection that sends more than limits.framesPerSecond frames with 1008', async () => {
    // A clock that stands still: the bucket never refills, so the outcome does not depend on speed.
    const { server, url } = await start({ limits: { framesPerSecond: 20 } }, new FakeClock())
    const client = await open(`${url}/`)
    for (let i = 0; i < 25; i++) client.send({ command: 'ping', data: null })
    expect(await client.closed).toEqual({ code: 1008, reason: 'frame_rate' })
    for (let i = 0; i < 20; i++) expect((await client.next()).type).toBe('pong')
    expect(server.tidings.limited.framesPerSecond).toBe(1)
  })
})

describe('a client that does not read', () => {
  it('gets no pong or replay past limits.slowConsumerBytes: it is closed with 4008 instead', () => {
    const config = parseConfig(loopbackConfig({ limits: { slowConsumerBytes: 1024 } }))
    const scheduler = new ManualScheduler()
    const tidings = new Tidings({
      config,
      clock: new FakeClock(),
      logger: new RecordingLogger(),
      scheduler,
    })
    for (const frame of ['{"command":"ping"}', '{"command":"replay","data":{"age":1000}}']) {
      const socket = new FakeSocket()
      const connection = tidings.hub.connect(socket, frame)
      tidings.hub.subscribe(connection, ['P'])
      const message = outboundFromValue({ n: 1 })
      tidings.hub.publish(frame, ['P'], message)
      socket.sent.length = 0
      // The answer is what it would add: past the budget only counting what waits already.
      const answer = frame.includes('ping') ? 15 : message.bytes.byteLength
      socket.pending = 1024 - answer
      handleFrame(tidings.frameContext, connection, frame)
      scheduler.runAll()
      expect(socket.sent).toHaveLength(1)
      expect(socket.closed).toBeUndefined()
      socket.pending = 1025 - answer
      handleFrame(tidings.frameContext, connection, frame)
      scheduler.runAll()
      expect(socket.sent).toHaveLength(1)
      expect(socket.closed).toEqual({ code: 4008, reason: 'slow_consumer' })
      expect(connection.open).toBe(false)
    }
    expect(tidings.hub.stats.slowConsumerCloses).toBe(2)
    expect(tidings.limited.slowConsumerBytes).toBe(2)
  })

  it("cannot grow the server's write queue by asking for replays without reading", async () => {
    const { server, admin, url } = await start({ limits: { slowConsumerBytes: 64 * 1024 } })
    for (let n = 0; n < 8; n++) {
      const response = await fetch(`${admin}/`, {
        method: 'POST',
        body: JSON.stringify({ n, pad: 'x'.repeat(60_000), subscribers: ['P'] }),
        signal: AbortSignal.timeout(3000),
      })
      expect(response.status).toBe(200)
    }
    const client = await connect(`${url}/`)
    client.send({ command: 'subscribe', data: ['P'] })
    await client.ping()
    // Stop reading: what the server writes now piles up in the kernel, then in its own queue.
    ;(client.ws as unknown as { _socket: { pause(): void } })._socket.pause()
    for (let i = 0; i < 100; i++) client.send({ command: 'replay', data: { age: 60_000 } })
    await eventually(
      () => server.tidings.hub.stats.slowConsumerCloses,
      (closes) => closes === 1,
      10_000
    )
    expect(server.tidings.hub.find('default')?.active).toBe(0)
    client.ws.terminate()
  })
})

describe('limits on the admin port', () => {
  it('refuses a POST body over limits.bodyBytes with 413 body_too_large', async () => {
    const { server, admin } = await start({ limits: { bodyBytes: 100 } })
    const response = await fetch(`${admin}/`, {
      method: 'POST',
      body: JSON.stringify({ subscribers: ['P'], pad: 'x'.repeat(200) }),
      signal: AbortSignal.timeout(3000),
    })
    expect(response.status).toBe(413)
    expect(await response.json()).toEqual({
      error: {
        code: 'body_too_large',
        message: 'Request body is larger than the limit of 100 bytes.',
      },
    })
    expect(server.tidings.limited.bodyBytes).toBe(1)
  })

  it('treats a client that goes away mid-body as a bad request, not a server error', async () => {
    const { server, admin, logger } = await start({})
    const { port } = new URL(admin)
    await new Promise<void>((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port: Number(port) }, () => {
        socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"subscr')
        setTimeout(() => {
          socket.destroy()
          resolve()
        }, 50)
      })
      socket.on('error', reject)
    })
    await eventually(
      () => server.tidings.rejected.badBodies,
      (count) => count === 1
    )
    expect(logger.lines.join('\n')).not.toMatch(/Internal Server Error/)
    expect(logger.lines).toContainEqual(
      expect.stringMatching(/Bad Request! Request body ended before it was complete/)
    )
  })

  it('keeps at most history.bytes of messages per instance; replay gets the newest that fit', async () => {
    const { server, admin, url } = await start({ history: { bytes: 1500 } })
    // Each stored message costs ~460 bytes: {"n":N,"pad":"…","subscribers":["P"],"uniqueID":…,
    // "touched":[fp]} (~350), its subscriber ids and the entry's overhead (src/hub/history.ts).
    for (let n = 0; n < 10; n++) {
      const response = await fetch(`${admin}/`, {
        method: 'POST',
        body: JSON.stringify({ n, pad: 'x'.repeat(200), subscribers: ['P'] }),
        signal: AbortSignal.timeout(3000),
      })
      expect(response.status).toBe(200)
    }
    const history = server.tidings.hub.find('default')?.history
    expect(history?.bytes).toBeLessThanOrEqual(1500)
    expect(history?.size).toBe(3)
    const client = await open(`${url}/`)
    client.send({ command: 'subscribe', data: ['P'] })
    client.send({ command: 'replay', data: { age: 60_000 } })
    expect([(await client.next()).n, (await client.next()).n, (await client.next()).n]).toEqual([
      7, 8, 9,
    ])
    await client.ping()
  })
})
