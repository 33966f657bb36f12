/**
 * The shared secret on the admin port, checked as a client sees it: 401 `unauthorized`
 * without it or with a wrong one, 200 with it, and the secret in no log line — not even in
 * debug (trace) mode, not when relaying to a peer that refuses it or is down.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { type RunningServer, startServer } from '../../adapters/node/server.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { secretMatches } from '../../src/relay/secret.ts'
import { RecordingLogger } from '../helpers/fakes.ts'
import { loopbackConfig } from '../helpers/node-target.ts'
import { freePort } from '../helpers/process.ts'
import { connect, eventually } from '../helpers/ws-client.ts'

const SECRET = 'k3y-Zq8-never-in-a-log'

const servers: RunningServer[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close(1000)
})

async function post(admin: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${admin}/`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ key: 'k', subscribers: ['P'] }),
    signal: AbortSignal.timeout(3000),
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

describe('the shared secret', () => {
  it('answers 401 unauthorized without the secret or with a wrong one, and 200 with it', async () => {
    const server = await startServer({
      config: parseConfig(loopbackConfig({ secret: SECRET })),
      logger: new RecordingLogger(),
    })
    servers.push(server)
    const admin = server.url('admin')
    const missing = await post(admin, {})
    expect(missing.status).toBe(401)
    expect(missing.body).toEqual({
      error: {
        code: 'unauthorized',
        message:
          'This server requires the secret in the "X-Tidings-Secret" header (see "secret" in the configuration).',
      },
    })
    for (const wrong of ['wrong', `${SECRET}x`]) {
      const refused = await post(admin, { 'X-Tidings-Secret': wrong })
      expect(refused.status).toBe(401)
      expect(refused.body).toEqual({
        error: {
          code: 'unauthorized',
          message: 'The "X-Tidings-Secret" header does not match this server\'s secret.',
        },
      })
    }
    expect((await post(admin, { 'X-Tidings-Secret': SECRET })).status).toBe(200)
  })

  it('never writes the secret to the log, even tracing, relaying to a refusing and a dead peer', async () => {
    const logger = new RecordingLogger(true)
    const refusing = await startServer({
      config: parseConfig(loopbackConfig({ secret: 'another-secret' })),
      logger: new RecordingLogger(),
    })
    servers.push(refusing)
    const dead = await freePort()
    const server = await startServer({
      config: parseConfig(
        loopbackConfig({
          secret: SECRET,
          cluster: [
            {
              host: '127.0.0.1',
              port: Number(new URL(refusing.url('admin')).port),
              protocol: 'http',
            },
            { host: '127.0.0.1', port: dead, protocol: 'http' },
          ],
          relay: { failures: 1, retryBase: 10, retryMax: 50, timeout: 500, connectTimeout: 200 },
        })
      ),
      logger,
    })
    servers.push(server)
    const client = await connect(`${server.url('client')}/`)
    client.send({ command: 'subscribe', data: ['P'] })
    await client.ping()
    const admin = server.url('admin')
    await post(admin)
    await post(admin, { 'X-Tidings-Secret': 'wrong' })
    await post(admin, { 'X-Tidings-Secret': SECRET })
    expect((await client.next()).key).toBe('k')
    await eventually(
      () => server.relay?.peers.map((peer) => peer.failed) ?? [],
      (failed) => failed.length === 2 && failed.every((n) => n > 0)
    )
    await client.close()
    expect(logger.lines.length).toBeGreaterThan(5)
    for (const line of logger.lines) expect(line).not.toContain(SECRET)
  })

  it('compares secrets exactly, whatever their lengths', async () => {
    expect(await secretMatches(SECRET, SECRET)).toBe(true)
    for (const given of [
      null,
      '',
      SECRET.slice(0, -1),
      `${SECRET}\u0000`,
      SECRET.toUpperCase(),
      ' '.repeat(10_000),
    ]) {
      expect(await secretMatches(given, SECRET)).toBe(false)
    }
  })
})
