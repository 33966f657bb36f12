/**
 * The hostile-client classes of SECURITY.md, each run against its own fresh `tidings run` on
 * 127.0.0.1 with the heap cap `tidings start` gives its daemon (256 MB), while a bystander
 * client pings every 20 ms. Each attack returns what it measured (descriptors, live memory,
 * what the attacker got back, the bystander's slowest round trip); `npm run attacks` prints
 * them and test/node/hostile.test.ts asserts on them. Loopback only, bounded in time.
 */
import { readdirSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import WebSocket from 'ws'
import { cpuMicros, processTree } from '../../bench/proc.ts'
import { RedisServer } from '../../test/helpers/redis.ts'
import { MB, rssOf, sleep, startTidings, type TidingsProcess } from './node.ts'

const DAEMON_FLAGS = ['--max-old-space-size=256']

/** What every attack reports besides its own figures. */
export interface Measured {
  /** The bystander's slowest ping round trip during the attack, ms. */
  bystanderMs: number
  /** The server was still running afterwards. */
  alive: boolean
  /** Log lines the server wrote during the attack. */
  logLines: number
}

/** Open descriptors of `pid`, from /proc (Linux). */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return Number.NaN
  }
}

/** Live memory after full GCs (heap plus buffers): what the server holds, not what it churned. */
async function held(server: TidingsProcess): Promise<number> {
  const sample = await server.memory(true)
  return sample.heapUsed + sample.arrayBuffers
}

function clientPort(server: TidingsProcess): number {
  return Number(new URL(server.clientUrl).port)
}

/** Sends `request` on a fresh TCP connection; resolves with what was answered within `waitMs`. */
export function rawRequest(
  port: number,
  request: string,
  waitMs: number
): Promise<{ answer: string; socket: Socket }> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let answer = ''
    const done = (): void => {
      clearTimeout(timer)
      resolve({ answer, socket })
    }
    const timer = setTimeout(done, waitMs)
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1')
      if (answer.includes('\r\n\r\n')) done()
    })
    socket.on('error', done)
    socket.on('close', done)
    socket.write(request)
  })
}

export function upgradeRequest(target: string, extraHeaders = ''): string {
  return `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`
}

export function openSocket(url: string, timeoutMs = 5000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const timer = setTimeout(() => {
      ws.terminate()
      reject(new Error(`connect to ${url} timed out`))
    }, timeoutMs)
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

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve({ code: 1006, reason: '' })
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))
  })
}

export async function post(
  adminUrl: string,
  body: string,
  query = '',
  headers: Record<string, string> = {}
): Promise<{ status: number; text: string }> {
  try {
    const response = await fetch(`${adminUrl}/${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      signal: AbortSignal.timeout(10_000),
    })
    return { status: response.status, text: await response.text() }
  } catch (error) {
    return { status: 0, text: (error as Error).message }
  }
}

/** Pings over `ws` every `everyMs` until stopped; reports the slowest round trip. */
function bystander(ws: WebSocket, everyMs = 20): { stop(): Promise<number> } {
  let worst = 0
  let running = true
  let sentAt = 0
  let waiting = false
  ws.on('message', (data) => {
    if (data.toString() === '{"type":"pong"}' && waiting) {
      waiting = false
      worst = Math.max(worst, performance.now() - sentAt)
    }
  })
  const loop = (async () => {
    while (running) {
      if (!waiting && ws.readyState === WebSocket.OPEN) {
        waiting = true
        sentAt = performance.now()
        ws.send('{"command":"ping","data":null}')
      } else if (waiting) {
        worst = Math.max(worst, performance.now() - sentAt)
      }
      await sleep(everyMs)
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      if (waiting) worst = Math.max(worst, performance.now() - sentAt)
      return worst
    },
  }
}

/**
 * Runs `attack` against a fresh server with `config`, with a bystander pinging throughout.
 * `bystander: false` for attacks that saturate the very thing a bystander needs.
 */
async function withServer<T>(
  config: Record<string, unknown>,
  attack: (server: TidingsProcess) => Promise<T>,
  options: { bystander?: boolean; probe?: boolean } = {}
): Promise<T & Measured> {
  const probed = options.probe ?? true
  const server = await startTidings({ config, nodeFlags: DAEMON_FLAGS, probe: probed })
  const all = /./
  server.watch(all)
  const watcher = options.bystander === false ? undefined : await openSocket(`${server.clientUrl}/`)
  const probe = watcher ? bystander(watcher) : undefined
  try {
    const start = server.count(all)
    const result = await attack(server)
    const bystanderMs = (await probe?.stop()) ?? 0
    return { ...result, bystanderMs, alive: server.alive(), logLines: server.count(all) - start }
  } finally {
    await probe?.stop()
    watcher?.terminate()
    await server.stop(3000)
  }
}

// --- 1. upgrades that break URL parsing ---------------------------------------------------

/** Request targets that made `new URL()` throw in the upgrade path (and more of the same). */
export const HOSTILE_TARGETS = ['//[/', 'http://[/', '//[::1/x', '/%zz', '*', '//x:99999/', '\\\\']

export async function hostileUpgrades(count = 100) {
  return withServer({ limits: { connectionsPerIp: 50 } }, async (server) => {
    const port = clientPort(server)
    const before = fdCount(server.pid)
    const replies = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        rawRequest(
          port,
          upgradeRequest(HOSTILE_TARGETS[i % HOSTILE_TARGETS.length] as string),
          3000
        )
      )
    )
    const statuses = replies.map((reply) => reply.answer.slice(9, 12) || 'none')
    for (const reply of replies) reply.socket.destroy()
    // Released once the server has seen every client go.
    const deadline = Date.now() + 5000
    let after = fdCount(server.pid)
    while (after > before && Date.now() < deadline) {
      await sleep(50)
      after = fdCount(server.pid)
    }
    let normal = 'connects'
    try {
      ;(await openSocket(`${server.clientUrl}/`)).close()
    } catch (error) {
      normal = `refused (${(error as Error).message})`
    }
    return { count, statuses, fdsBefore: before, fdsAfter: after, normal }
  })
}

// --- 2. subscriptions bounded in count, not bytes -----------------------------------------

export async function longIds(
  options: { idLength?: number; ids?: number; connections?: number } = {}
) {
  const { idLength = 60_000, ids = 150, connections = 2 } = options
  return withServer({}, async (server) => {
    const before = await held(server)
    const outcomes = await Promise.all(
      Array.from({ length: connections }, async (_, c) => {
        const ws = await openSocket(`${server.clientUrl}/`)
        const end = closed(ws)
        let sent = 0
        // Inside frameBytes and framesPerSecond: one id per frame, 50 frames a second.
        for (; sent < ids && ws.readyState === WebSocket.OPEN; sent++) {
          ws.send(
            JSON.stringify({ command: 'subscribe', data: [`${c}-${sent}-`.padEnd(idLength, 'x')] })
          )
          await sleep(20)
        }
        await sleep(300)
        const close = ws.readyState === WebSocket.OPEN ? undefined : await end
        return { ws, sent, close }
      })
    )
    // Measured while the attackers are still connected: what their subscriptions hold.
    const heldMiB = ((await held(server)) - before) / MB
    for (const { ws } of outcomes) ws.terminate()
    return {
      connections,
      idLength,
      heldMiB,
      outcomes: outcomes.map(({ sent, close }) => ({ sent, close })),
    }
  })
}

/** Many PHID-sized ids: the byte budget, not the count, closes the connection. */
export async function manyIds(options: { idLength?: number; ids?: number } = {}) {
  const { idLength = 200, ids = 900 } = options
  return withServer({}, async (server) => {
    const ws = await openSocket(`${server.clientUrl}/`)
    const end = closed(ws)
    let sent = 0
    for (; sent < ids && ws.readyState === WebSocket.OPEN; sent += 50) {
      const batch = Array.from({ length: 50 }, (_, i) => `id-${sent + i}-`.padEnd(idLength, 'y'))
      ws.send(JSON.stringify({ command: 'subscribe', data: batch }))
      await sleep(25)
    }
    const close = await Promise.race([end, sleep(3000).then(() => undefined)])
    ws.terminate()
    return { sent, close }
  })
}

// --- 3. replay amplification ---------------------------------------------------------------

export async function replayBurst(
  options: { messages?: number; replays?: number; limits?: Record<string, unknown> } = {}
) {
  const { messages = 4000, replays = 90 } = options
  return withServer({ limits: options.limits ?? {} }, async (server) => {
    const busy = 'PHID-BUSY-0000'
    const payload = 'x'.repeat(1000)
    for (let i = 0; i < messages; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          post(server.adminUrl, JSON.stringify({ subscribers: [busy], n: i + j, payload }))
        )
      )
    }
    const attacker = await openSocket(`${server.clientUrl}/`)
    const end = closed(attacker)
    attacker.send(JSON.stringify({ command: 'subscribe', data: [busy] }))
    await sleep(100)
    const raw = (attacker as unknown as { _socket: Socket })._socket
    raw.pause()
    const before = rssOf(server.pid)
    let peak = before
    // One TCP write carrying every frame, as the attack does it.
    raw.cork()
    for (let i = 0; i < replays; i++) attacker.send('{"command":"replay","data":{"age":60000}}')
    raw.uncork()
    const deadline = Date.now() + 5000
    while (Date.now() < deadline) {
      peak = Math.max(peak, rssOf(server.pid))
      await sleep(50)
    }
    raw.resume()
    const close = await Promise.race([end, sleep(3000).then(() => undefined)])
    attacker.terminate()
    return { historyMiB: (messages * 1050) / MB, replays, rssPeakMiB: (peak - before) / MB, close }
  })
}

/**
 * The same, on a node with worker processes, where a replay is answered by the primary's
 * history over IPC: non-reading sockets ask again and again, each ask in a turn of its own,
 * for `seconds`. Measured over the whole process tree (primary and workers).
 */
export async function replayTurns(
  options: { messages?: number; attackers?: number; seconds?: number } = {}
) {
  const { messages = 150, attackers = 20, seconds = 3 } = options
  const budget = 4 * MB
  const config = { processes: 2, limits: { slowConsumerBytes: budget } }
  // The memory probe answers on the primary's IPC channel only: not preloaded into workers.
  return withServer(
    config,
    async (server) => {
      const busy = 'PHID-BUSY-0000'
      const payload = 'x'.repeat(100_000)
      for (let i = 0; i < messages; i++) {
        await post(server.adminUrl, JSON.stringify({ subscribers: [busy], n: i, payload }))
      }
      const tree = (): number[] => processTree(server.pid)
      const rss = (): number => tree().reduce((sum, pid) => sum + rssOf(pid), 0)
      const cpu = (): number => tree().reduce((sum, pid) => sum + cpuMicros(pid), 0)
      const sockets = await Promise.all(
        Array.from({ length: attackers }, async () => {
          const ws = await openSocket(`${server.clientUrl}/`)
          ws.send(JSON.stringify({ command: 'subscribe', data: [busy] }))
          return ws
        })
      )
      await sleep(200)
      for (const ws of sockets) (ws as unknown as { _socket: Socket })._socket.pause()
      const before = rss()
      const cpuBefore = cpu()
      let peak = before
      const deadline = Date.now() + seconds * 1000
      while (Date.now() < deadline) {
        for (const ws of sockets) ws.send('{"command":"replay","data":{"age":60000}}')
        peak = Math.max(peak, rss())
        await sleep(5)
      }
      await sleep(1000)
      peak = Math.max(peak, rss())
      const cpuMs = (cpu() - cpuBefore) / 1000
      const stats = (await (await fetch(`${server.adminUrl}/stats.json`)).json()) as {
        totals: { slowConsumerCloses: number }
      }
      for (const ws of sockets) ws.terminate()
      return {
        historyMiB: (messages * 100_000) / MB,
        attackers,
        seconds,
        budgetMiB: budget / MB,
        rssPeakMiB: (peak - before) / MB,
        cpuMs,
        closed4008: stats.totals.slowConsumerCloses,
      }
    },
    { probe: false }
  )
}

/**
 * With a Redis backplane and `routing: subscriber`, one client subscribes to 1000 new ids and
 * drops them again, 40 times a second, for `seconds`: channels the node (and Redis) holds.
 */
export async function idChurn(options: { seconds?: number; processes?: number } = {}) {
  const { seconds = 5, processes = 1 } = options
  const redis = await RedisServer.start()
  try {
    const backplane = { type: 'redis', url: redis.url, routing: 'subscriber' }
    const config = { backplane, processes }
    return await withServer(
      config,
      async (server) => {
        const channels = async (): Promise<number> =>
          Number(await redis.cli('EVAL', "return #redis.call('PUBSUB', 'CHANNELS')", '0'))
        const redisMemory = async (): Promise<number> =>
          Number(/used_memory:(\d+)/.exec(await redis.cli('INFO', 'memory'))?.[1])
        const tree = (): number[] => processTree(server.pid)
        const cpu = (): number => tree().reduce((sum, pid) => sum + cpuMicros(pid), 0)
        const rssBefore = rssOf(server.pid)
        const redisBefore = await redisMemory()
        const cpuBefore = cpu()
        const ws = await openSocket(`${server.clientUrl}/`)
        const end = closed(ws)
        let peakChannels = 0
        let peakRss = rssBefore
        let peakRedis = redisBefore
        let n = 0
        const deadline = Date.now() + seconds * 1000
        while (Date.now() < deadline && ws.readyState === WebSocket.OPEN) {
          const ids = Array.from(
            { length: 1000 },
            () => `PHID-USER-${(n++).toString(36).padStart(15, '0')}`
          )
          ws.send(JSON.stringify({ command: 'subscribe', data: ids }))
          ws.send(JSON.stringify({ command: 'unsubscribe', data: ids }))
          await sleep(25)
          if (n % 20_000 === 0) {
            peakChannels = Math.max(peakChannels, await channels())
            peakRss = Math.max(peakRss, rssOf(server.pid))
            peakRedis = Math.max(peakRedis, await redisMemory())
          }
        }
        peakChannels = Math.max(peakChannels, await channels())
        const cpuMs = (cpu() - cpuBefore) / 1000
        const close = await Promise.race([end, sleep(100).then(() => undefined)])
        ws.terminate()
        return {
          ids: n,
          seconds,
          peakChannels,
          rssPeakMiB: (peakRss - rssBefore) / MB,
          redisPeakMiB: (peakRedis - redisBefore) / MB,
          cpuMs,
          close,
        }
      },
      // The memory probe answers on the primary's IPC channel only: not preloaded into workers.
      { probe: processes === 1 }
    )
  } finally {
    await redis.dispose()
  }
}

// --- 4. guessable origin ids ---------------------------------------------------------------

export async function forgedIds(options: { forged?: number; messages?: number } = {}) {
  const { forged = 50, messages = 20 } = options
  // A cluster peer made the old code mint origin ids; port 9 (discard) on loopback never answers.
  const cluster = [{ host: '127.0.0.1', port: 9, protocol: 'http' }]
  return withServer({ cluster }, async (server) => {
    const id = 'PHID-VICTIM-0001'
    const ws = await openSocket(`${server.clientUrl}/`)
    ws.send(JSON.stringify({ command: 'subscribe', data: [id] }))
    await sleep(100)
    const receipt = await post(
      server.adminUrl,
      JSON.stringify({ subscribers: [], uniqueID: 'probe' })
    )
    const fingerprint = (JSON.parse(receipt.text) as { fingerprint: string }).fingerprint
    for (let n = 1; n <= forged; n++) {
      const guess = `${fingerprint}:${n.toString(36)}`
      await post(server.adminUrl, JSON.stringify({ subscribers: [], 'tidings.origin': guess }))
    }
    let received = 0
    ws.on('message', () => {
      received++
    })
    for (let i = 0; i < messages; i++) {
      await post(server.adminUrl, JSON.stringify({ type: 'notification', subscribers: [id], n: i }))
    }
    const deadline = Date.now() + 3000
    while (received < messages && Date.now() < deadline) await sleep(20)
    await sleep(200)
    ws.close()
    return { forged, messages, received }
  })
}

// --- 5. deep JSON --------------------------------------------------------------------------

export async function deepBody(depth = 6000) {
  return withServer({}, async (server) => {
    const id = 'PHID-DEEP-0001'
    const ws = await openSocket(`${server.clientUrl}/`)
    ws.send(JSON.stringify({ command: 'subscribe', data: [id] }))
    await sleep(100)
    let received = 0
    ws.on('message', () => {
      received++
    })
    const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`
    const bad = await post(
      server.adminUrl,
      `{"subscribers":["${id}"],"uniqueID":"deep-1","deep":${nested}}`
    )
    const code = /"code":"([a-z_]+)"/.exec(bad.text)?.[1] ?? '-'
    const good = await post(
      server.adminUrl,
      JSON.stringify({ subscribers: [id], uniqueID: 'deep-1' })
    )
    const deadline = Date.now() + 3000
    while (received < 1 && Date.now() < deadline) await sleep(20)
    await sleep(200)
    ws.close()
    return { depth, badStatus: bad.status, badCode: code, goodStatus: good.status, received }
  })
}

// --- degraded: history across many instances ------------------------------------------------

export async function instanceFlood(
  options: { instances?: number; limits?: Record<string, unknown> } = {}
) {
  const { instances = 400 } = options
  return withServer({ limits: options.limits ?? {} }, async (server) => {
    const before = rssOf(server.pid)
    const heldBefore = await held(server)
    const body = JSON.stringify({ subscribers: [], blob: 'y'.repeat(1_000_000) })
    const statuses: Record<string, number> = {}
    for (let i = 0; i < instances && server.alive(); i += 10) {
      const replies = await Promise.all(
        Array.from({ length: Math.min(10, instances - i) }, (_, j) =>
          post(server.adminUrl, body, `?instance=flood-${i + j}`)
        )
      )
      for (const reply of replies) statuses[reply.status] = (statuses[reply.status] ?? 0) + 1
    }
    await sleep(500)
    const alive = server.alive()
    return {
      instances,
      statuses,
      rssMiB: alive ? (rssOf(server.pid) - before) / MB : Number.NaN,
      heldMiB: alive ? ((await held(server)) - heldBefore) / MB : Number.NaN,
    }
  })
}

// --- degraded: TCP connections that never upgrade -----------------------------------------

export async function idleConnections(
  options: { count?: number; waitMs?: number; limits?: Record<string, unknown> } = {}
) {
  const { count = 1000, waitMs = 20_000 } = options
  return withServer({ limits: options.limits ?? {} }, async (server) => {
    const port = clientPort(server)
    const before = fdCount(server.pid)
    const sockets: Socket[] = []
    let refused = 0
    for (let i = 0; i < count; i++) {
      const socket = createConnection({ host: '127.0.0.1', port })
      socket.on('error', () => {})
      socket.once('data', (chunk) => {
        if (chunk.toString('latin1').startsWith('HTTP/1.1 429')) refused++
      })
      // Half a request line, then nothing (slowloris).
      socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n')
      sockets.push(socket)
    }
    await sleep(2000)
    const heldEarly = fdCount(server.pid) - before
    await sleep(waitMs)
    const heldLate = fdCount(server.pid) - before
    for (const socket of sockets) socket.destroy()
    return { count, refused, heldEarly, heldLate, waitedMs: waitMs + 2000 }
  })
}

// --- degraded: the connection ceiling ------------------------------------------------------

export async function atCapacity(ceiling = 20) {
  return withServer(
    { limits: { connections: ceiling } },
    async (server) => {
      const sockets = await Promise.all(
        Array.from({ length: ceiling }, () => openSocket(`${server.clientUrl}/`))
      )
      const refusal = await rawRequest(clientPort(server), upgradeRequest('/'), 3000)
      refusal.socket.destroy()
      const ready = await fetch(`${server.adminUrl}/readyz`, { signal: AbortSignal.timeout(3000) })
      const readyz = { status: ready.status, body: (await ready.json()) as { status: string } }
      for (const ws of sockets) ws.terminate()
      const deadline = Date.now() + 5000
      let readyAfter = 0
      while (readyAfter !== 200 && Date.now() < deadline) {
        readyAfter = (await fetch(`${server.adminUrl}/readyz`)).status
        if (readyAfter !== 200) await sleep(50)
      }
      return { ceiling, refusal: refusal.answer.split('\r\n')[0] ?? '', readyz, readyAfter }
    },
    { bystander: false }
  )
}

// --- degraded: log lines per refused request ------------------------------------------------

export async function authFlood(count = 2000) {
  return withServer({ secret: 'right-secret' }, async (server) => {
    const pattern = /Unauthorized|Bad Request/
    server.watch(pattern)
    for (let i = 0; i < count; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, count - i) }, () =>
          post(server.adminUrl, '{"subscribers":[]}', '', { 'x-tidings-secret': 'wrong' })
        )
      )
    }
    await sleep(300)
    return { count, lines: server.count(pattern) }
  })
}
