/**
 * The client port's upgrade path under arbitrary requests (fast-check): whatever the request
 * line, target and headers, and whether the request is complete or cut short, every socket
 * is answered or closed by the server, and once the clients hang up the server holds no
 * connection, no handshake and no per-address count for any of them.
 */
import { createConnection } from 'node:net'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningServer, startServer } from '../../adapters/node/server.ts'
import { HOSTILE_TARGETS } from '../../scripts/hardening/attacks.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { loopbackConfig, silentLogger } from '../helpers/node-target.ts'
import { eventually } from '../helpers/ws-client.ts'
import { PROPERTY_RUNS, SEED } from './seed.ts'

/** Cut-short requests are closed by the handshake deadline, checked on the node's 1 s sweep. */
const HANDSHAKE_TIMEOUT_MS = 200
const CLOSE_WITHIN_MS = HANDSHAKE_TIMEOUT_MS + 1000 + 2000

const text = (max: number) => fc.string({ maxLength: max, unit: 'binary-ascii' })

const target = fc.oneof(
  fc.constantFrom(...HOSTILE_TARGETS, '/', '/~default/', '/~a~b/', '/~/', '/?x=1#y', '/~bad name/'),
  fc.constantFrom('http://h/~x/', 'https://[::1]:1/', '//', '/%00', '/~%zz/', '/'.repeat(300)),
  text(40).map((t) => `/${t}`),
  text(20)
)

const header = fc.oneof(
  fc.constantFrom(
    'Upgrade: websocket',
    'Upgrade: WebSocket',
    'Upgrade: h2c',
    'Connection: Upgrade',
    'Connection: keep-alive, Upgrade',
    'Connection: close',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Key: short',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Version: 8',
    'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits',
    'Sec-WebSocket-Protocol: a, b',
    'Host: 127.0.0.1',
    'Host: [',
    'Origin: https://phorge.example.org',
    'Origin: null',
    'X-Forwarded-For: 203.0.113.9, nonsense',
    'Content-Length: 5',
    'Transfer-Encoding: chunked'
  ),
  fc.tuple(text(12), text(30)).map(([name, value]) => `${name}: ${value}`)
)

const request = fc.record({
  method: fc.constantFrom('GET', 'GET', 'GET', 'POST', 'OPTIONS', 'G\u00e9T', ''),
  target,
  version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/1.1 x', ''),
  headers: fc.array(header, { maxLength: 10 }),
  /** The usual upgrade headers, so many requests get as far as the WebSocket handshake. */
  upgrade: fc.boolean(),
  /** Cut short before the blank line: only the deadline ends these. */
  complete: fc.boolean(),
})

type Request = typeof request extends fc.Arbitrary<infer T> ? T : never

function render(r: Request): string {
  const lines = [`${r.method} ${r.target} ${r.version}`]
  if (r.upgrade) {
    lines.push(
      'Host: 127.0.0.1',
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13'
    )
  }
  lines.push(...r.headers)
  return `${lines.join('\r\n')}\r\n${r.complete ? '\r\n' : ''}`
}

/** Sends `raw`; resolves when the server answered (a status line) or closed the socket. */
function exchange(port: number, raw: string): Promise<{ answered: boolean; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let answer = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(
        new Error(`no answer and no close within ${CLOSE_WITHIN_MS} ms for ${JSON.stringify(raw)}`)
      )
    }, CLOSE_WITHIN_MS)
    const done = (closed: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ answered: /^HTTP\/1\.[01] \d{3} /.test(answer), closed })
    }
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1')
      if (answer.includes('\r\n\r\n')) done(false)
    })
    socket.on('error', () => done(true))
    socket.on('close', () => done(true))
    socket.write(raw, 'latin1')
  })
}

describe('upgrade path (property)', () => {
  let server: RunningServer
  let port: number
  beforeAll(async () => {
    server = await startServer({
      config: parseConfig(
        loopbackConfig({
          limits: {
            handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
            connectionsPerIp: 8,
            connectionsPerSecond: 1000,
          },
          origins: ['https://phorge.example.org'],
        })
      ),
      logger: silentLogger,
    })
    port = Number(new URL(server.url('client')).port)
  })
  afterAll(async () => {
    await server?.close(1000)
  })

  const held = async (): Promise<{ connections: number; handshakes: number }> => {
    const response = await fetch(`${server.url('admin')}/stats.json`, {
      signal: AbortSignal.timeout(3000),
    })
    return ((await response.json()) as { budgets: { connections: number; handshakes: number } })
      .budgets
  }

  it('answers or closes every socket, and holds nothing once the clients are gone', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 6 }), async (batch) => {
        const results = await Promise.all(batch.map((r) => exchange(port, render(r))))
        results.forEach((result, i) => {
          // A complete request gets an answer; a cut-short one at least a close.
          if ((batch[i] as Request).complete && !result.closed) {
            expect(result.answered).toBe(true)
          }
        })
        await eventually(held, (budgets) => budgets.connections === 0 && budgets.handshakes === 0)
      }),
      { seed: SEED, numRuns: Math.max(20, Math.floor(PROPERTY_RUNS / 6)) }
    )
    expect(server.tidings.hub.find('default')?.active ?? 0).toBe(0)
  }, 180_000)
})
