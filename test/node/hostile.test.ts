/**
 * Hostile clients, one test per class of SECURITY.md, each against a real `tidings run`
 * process on 127.0.0.1 (the daemon's 256 MB heap cap) with a bystander pinging throughout:
 * what the attacker gets back, and what the server holds afterwards. The attacks are the
 * ones `npm run attacks` runs (scripts/hardening/attacks.ts), at smaller sizes. Every one of
 * these failed against the code before the resource model (see SECURITY.md).
 */
import { existsSync, readFileSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startServer } from '../../adapters/node/server.ts'
import * as attack from '../../scripts/hardening/attacks.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { loopbackConfig, silentLogger } from '../helpers/node-target.ts'
import { HANDSHAKE_MS } from '../helpers/patience.ts'
import { fixedPortConfig, runCli, tempDir } from '../helpers/process.ts'
import { eventually } from '../helpers/ws-client.ts'

/** The node kept answering its other clients: not a latency target, a sign of life under load. */
const BYSTANDER_MS = 2000

describe('hostile clients', { timeout: 90_000 }, () => {
  it('answers every upgrade whose target broke URL parsing, and releases its descriptor', async () => {
    const m = await attack.hostileUpgrades(60)
    expect(m.alive).toBe(true)
    // Every one answered: upgraded, refused past connectionsPerIp, or a 400.
    for (const status of m.statuses) expect(['101', '400', '429']).toContain(status)
    expect(m.fdsAfter).toBeLessThanOrEqual(m.fdsBefore)
    expect(m.normal).toBe('connects')
    expect(m.bystanderMs).toBeLessThan(BYSTANDER_MS)
  })

  it('answers 400 bad_request and releases the connection when anything in the upgrade path throws', async () => {
    const server = await startServer({
      config: parseConfig(loopbackConfig({ limits: { connectionsPerIp: 1 } })),
      logger: silentLogger,
    })
    try {
      const port = Number(new URL(server.url('client')).port)
      const hub = server.tidings.hub
      const has = hub.has.bind(hub)
      hub.has = () => {
        throw new Error('injected failure')
      }
      for (let i = 0; i < 3; i++) {
        const reply = await attack.rawRequest(port, attack.upgradeRequest('/'), HANDSHAKE_MS)
        expect(reply.answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/)
        expect(reply.answer).toContain('"code":"bad_request"')
        reply.socket.destroy()
      }
      hub.has = has
      // Each connection was released: the one this address may hold is free.
      await eventually(
        async () => {
          const stats = (await (await fetch(`${server.url('admin')}/stats.json`)).json()) as {
            budgets: { connections: number }
          }
          return stats.budgets.connections
        },
        (held) => held === 0
      )
      const ws = new WebSocket(`${server.url('client')}/`)
      await new Promise((resolve, reject) => {
        ws.once('open', resolve)
        ws.once('error', reject)
      })
      ws.close()
    } finally {
      await server.close(1000)
    }
  })

  it('closes a connection sending a long id with 1008 id_too_long, holding nothing for it', async () => {
    const m = await attack.longIds({ ids: 20 })
    for (const outcome of m.outcomes) {
      expect(outcome.close).toEqual({ code: 1008, reason: 'id_too_long' })
      expect(outcome.sent).toBeLessThanOrEqual(2)
    }
    expect(m.heldMiB).toBeLessThan(1)
    expect(m.bystanderMs).toBeLessThan(BYSTANDER_MS)
  })

  it('closes a connection past limits.subscriptionBytes with 1008 subscription_bytes', async () => {
    const m = await attack.manyIds()
    expect(m.close).toEqual({ code: 1008, reason: 'subscription_bytes' })
    // 64 KiB of 200-byte ids is about 330: the count limit (1000) was never reached.
    expect(m.sent).toBeLessThan(500)
  })

  it('serves a burst of replays from a socket that does not read once, then closes it with 4008', async () => {
    // 2 MB of history to replay against a 1 MiB output budget.
    const m = await attack.replayBurst({
      messages: 2000,
      limits: { slowConsumerBytes: 1024 * 1024 },
    })
    expect(m.close).toEqual({ code: 4008, reason: 'slow_consumer' })
    expect(m.rssPeakMiB).toBeLessThan(64)
    expect(m.alive).toBe(true)
    expect(m.bystanderMs).toBeLessThan(BYSTANDER_MS)
  })

  it('delivers every message without a uniqueID however many ids were posted ahead of it', async () => {
    const m = await attack.forgedIds({ forged: 20, messages: 10 })
    expect(m.received).toBe(10)
  })

  it('refuses a body nested too deep with 400 body_too_deep, and delivers the corrected re-post', async () => {
    const m = await attack.deepBody(6000)
    expect([m.badStatus, m.badCode]).toEqual([400, 'body_too_deep'])
    expect(m.goodStatus).toBe(200)
    expect(m.received).toBe(1)
    expect(m.logLines).toBeLessThanOrEqual(2)
  })

  it('bounds the history of all instances together by limits.historyBytes', async () => {
    const m = await attack.instanceFlood({
      instances: 60,
      limits: { historyBytes: 8 * 1024 * 1024 },
    })
    expect(m.statuses).toEqual({ 200: 60 })
    // 60 MB posted, 8 MiB kept (plus what a few in flight hold).
    expect(m.heldMiB).toBeLessThan(24)
    expect(m.alive).toBe(true)
  })

  it('closes connections that do not upgrade in time, and refuses too many at once from one address', async () => {
    const m = await attack.idleConnections({
      count: 300,
      waitMs: 2500,
      limits: { handshakeTimeout: 1000, handshakesPerIp: 100 },
    })
    expect(m.refused).toBe(200)
    expect(m.heldEarly).toBeLessThanOrEqual(100 + 2)
    expect(m.heldLate).toBeLessThan(5)
    expect(m.bystanderMs).toBeLessThan(BYSTANDER_MS)
  })

  it('refuses connections past limits.connections with 503 and says why on /readyz', async () => {
    const m = await attack.atCapacity(10)
    expect(m.refusal).toBe('HTTP/1.1 503 Service Unavailable')
    expect(m.readyz).toEqual({
      status: 503,
      body: expect.objectContaining({ status: 'at_capacity' }),
    })
    expect(m.readyAfter).toBe(200)
    expect(m.logLines).toBeGreaterThanOrEqual(1)
  })

  it('writes one log line, not one per request, for a flood of wrong secrets', async () => {
    const m = await attack.authFlood(500)
    expect(m.lines).toBe(1)
    expect(m.alive).toBe(true)
  })
})

describe('a daemon started with tidings start', { timeout: 60_000 }, () => {
  const stops: string[] = []
  afterAll(async () => {
    for (const path of stops) await runCli(['stop', '--config', path, '--timeout', '5000'])
  })

  it('logs its warnings to its log file, not to the closed stderr of the command that started it', async () => {
    const dir = tempDir()
    const { path, client, config } = await fixedPortConfig(dir, {
      origins: ['https://phorge.example.org'],
      drain: { window: 0 },
    })
    stops.push(path)
    expect((await runCli(['start', '--config', path])).code).toBe(0)
    // A refused origin is a warning: the first one after start-up used to hit EPIPE.
    for (let i = 0; i < 3; i++) {
      const reply = await attack.rawRequest(
        client,
        attack.upgradeRequest('/', 'Origin: https://evil.example\r\n'),
        HANDSHAKE_MS
      )
      expect(reply.answer).toMatch(/^HTTP\/1\.1 403 /)
      reply.socket.destroy()
    }
    const log = config.logs[0]?.path as string
    const text = await eventually(
      () => (existsSync(log) ? readFileSync(log, 'utf8') : ''),
      (content) => content.includes('Refused client connection')
    )
    await new Promise((resolve) => setTimeout(resolve, 300))
    const after = readFileSync(log, 'utf8')
    expect(after).not.toMatch(/EPIPE|UNCAUGHT/)
    expect(text).toContain('https://evil.example')
    expect((await runCli(['status', '--config', path])).code).toBe(0)
  })
})
