/**
 * Graceful drain of a real `tidings run` process: SIGTERM with 500 clients connected.
 * Close times are measured in this process from the moment the signal is sent.
 */
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { fixedPortConfig, type Spawned, spawnCli, tempDir } from '../helpers/process.ts'
import { eventually } from '../helpers/ws-client.ts'

const CLIENTS = 500
const WINDOW_MS = 3000
const WAVES = 10

interface Closed {
  code: number
  reason: string
  at: number
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const timer = setTimeout(() => {
      ws.terminate()
      reject(new Error(`connect to ${url} timed out`))
    }, 5000)
    ws.once('open', () => {
      clearTimeout(timer)
      resolve(ws)
    })
    ws.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

const running: Spawned[] = []
const sockets: WebSocket[] = []
afterEach(() => {
  for (const ws of sockets.splice(0)) ws.terminate()
  for (const spawned of running.splice(0)) spawned.child.kill('SIGKILL')
})

describe('drain on SIGTERM', { timeout: 60_000 }, () => {
  it('closes 500 sockets with 4000 in waves spread over the window, flips /readyz to 503, exits 0', async () => {
    const dir = tempDir()
    const { client, path, adminUrl } = await fixedPortConfig(dir, {
      logs: [{ path: join(dir, 'tidings.log') }],
      drain: { window: WINDOW_MS, waves: WAVES, lone: 'drain' },
    })
    const server = spawnCli(['run', '--config', path])
    running.push(server)
    await server.waitFor(/has fingerprint/)
    expect((await fetch(`${adminUrl}/readyz`)).status).toBe(200)

    for (let i = 0; i < CLIENTS; i += 50) {
      const batch = Array.from({ length: Math.min(50, CLIENTS - i) }, () =>
        open(`ws://127.0.0.1:${client}/`)
      )
      sockets.push(...(await Promise.all(batch)))
    }
    for (const ws of sockets) ws.send(JSON.stringify({ command: 'subscribe', data: ['PHID-D'] }))
    const received: number[] = sockets.map(() => 0)
    sockets.forEach((ws, i) => {
      ws.on('message', () => {
        received[i] = (received[i] ?? 0) + 1
      })
    })
    await eventually(
      async () => (await (await fetch(`${adminUrl}/stats.json`)).json()).totals,
      (totals: { connections: number; subscriptions: number }) =>
        totals.connections === CLIENTS && totals.subscriptions === CLIENTS,
      10_000
    )

    let sentAt = 0
    const closes = sockets.map(
      (ws) =>
        new Promise<Closed>((resolve) =>
          ws.once('close', (code, reason) =>
            resolve({ code, reason: reason.toString(), at: Date.now() - sentAt })
          )
        )
    )
    sentAt = Date.now()
    server.child.kill('SIGTERM')

    // While draining: not ready, no new sockets, but the admin port still takes messages.
    const ready = await eventually(
      () => fetch(`${adminUrl}/readyz`).then((response) => response.status),
      (status) => status === 503,
      WINDOW_MS
    )
    expect(ready).toBe(503)
    await expect(open(`ws://127.0.0.1:${client}/`)).rejects.toThrow()
    const post = await fetch(`${adminUrl}/`, {
      method: 'POST',
      body: JSON.stringify({ subscribers: ['PHID-D'], key: 'during-drain' }),
    })
    expect(post.status).toBe(200)
    const metrics = await (await fetch(`${adminUrl}/metrics`)).text()
    expect(metrics).toContain('\ntidings_draining 1\n')

    const closed = await Promise.all(closes)
    const exit = await server.exited
    expect(exit).toBe(0)

    expect(closed.filter((c) => c.code === 4000 && c.reason === 'draining')).toHaveLength(CLIENTS)
    // The message posted during the drain reached the sockets still open at that time.
    expect(received.some((count) => count === 1)).toBe(true)
    const times = closed.map((c) => c.at).sort((a, b) => a - b)
    const first = times[0] as number
    const last = times[times.length - 1] as number
    // Within the window (plus slack for a busy machine), and spread over it: not one burst.
    expect(last).toBeLessThan(WINDOW_MS + 1500)
    expect(last - first).toBeGreaterThan(WINDOW_MS / 3)
    const buckets = new Set(times.map((t) => Math.floor(t / 100)))
    expect(buckets.size).toBeGreaterThanOrEqual(WAVES / 2)
    const largestBurst = Math.max(
      ...[...buckets].map((b) => times.filter((t) => Math.floor(t / 100) === b).length)
    )
    expect(largestBurst).toBeLessThan(CLIENTS / 2)
    expect(server.output()).toContain(`Drained ${CLIENTS} client sockets in ${WAVES} waves.`)
    expect(server.output()).toContain('Stopped.')
  })
})
