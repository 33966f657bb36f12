/**
 * `npm run attacks`: the hostile-client classes of SECURITY.md, each tried against its own
 * fresh `tidings run` on 127.0.0.1 with the heap cap `tidings start` gives its daemon
 * (256 MB), and measured: descriptors, memory, a bystander's ping round trip, and what the
 * attacker got back. Prints one table; exit 0 when every class is contained, 1 otherwise.
 *
 *   npm run attacks -- [--only upgrade,ids,replay,origin,deep,instances,idle,auth]
 *
 * Nothing here asserts timing; "contained" means the server answered, stayed up, released
 * what the attacker opened, and held memory inside its budgets. The figures are the point.
 */
import { readdirSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import { pathToFileURL } from 'node:url'
import WebSocket from 'ws'
import { MB, rssOf, sleep, startTidings, type TidingsProcess } from './hardening/node.ts'

export interface AttackResult {
  name: string
  /** What was measured, in words, e.g. "+0 fds after 100 upgrades; all answered 400". */
  figures: string
  contained: boolean
}

const DAEMON_FLAGS = ['--max-old-space-size=256']

/** Open descriptors of `pid`, from /proc (Linux). */
function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return Number.NaN
  }
}

function clientPort(server: TidingsProcess): number {
  return Number(new URL(server.clientUrl).port)
}

/** Sends `request` on a fresh TCP connection; resolves with the first bytes answered (or ''). */
function rawRequest(
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

function upgradeRequest(target: string): string {
  return `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`
}

function open(url: string, timeoutMs = 5000): Promise<WebSocket> {
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

async function post(
  server: TidingsProcess,
  body: string,
  query = '',
  headers: Record<string, string> = {}
): Promise<{ status: number; text: string }> {
  try {
    const response = await fetch(`${server.adminUrl}/${query}`, {
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
      if (!waiting) {
        waiting = true
        sentAt = performance.now()
        ws.send('{"command":"ping","data":null}')
      } else {
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

/** Live memory after full GCs (heap plus buffers): what the server holds, not what it churned. */
async function held(server: TidingsProcess): Promise<number> {
  const sample = await server.memory(true)
  return sample.heapUsed + sample.arrayBuffers
}

async function withServer(
  config: Record<string, unknown>,
  body: (server: TidingsProcess) => Promise<Omit<AttackResult, 'name'>>
): Promise<Omit<AttackResult, 'name'>> {
  const server = await startTidings({ config, nodeFlags: DAEMON_FLAGS, probe: true })
  try {
    const result = await body(server)
    if (!server.alive())
      return { ...result, contained: false, figures: `${result.figures}; server DIED` }
    return result
  } finally {
    await server.stop(3000)
  }
}

// --- 1. a request whose target makes URL parsing throw ---------------------------------------

async function upgradeLeak(): Promise<Omit<AttackResult, 'name'>> {
  return withServer({ limits: { connectionsPerIp: 50 } }, async (server) => {
    const port = clientPort(server)
    const before = fdCount(server.pid)
    const count = 100
    const replies = await Promise.all(
      Array.from({ length: count }, () => rawRequest(port, upgradeRequest('//[/'), 2000))
    )
    const answered = replies.filter((reply) => reply.answer.startsWith('HTTP/1.1 ')).length
    const statuses = [...new Set(replies.map((reply) => reply.answer.slice(9, 12) || 'none'))]
    for (const reply of replies) reply.socket.destroy()
    await sleep(1500)
    const after = fdCount(server.pid)
    let normal = 'connects'
    try {
      const ws = await open(`${server.clientUrl}/`)
      ws.close()
    } catch (error) {
      normal = `refused (${(error as Error).message})`
    }
    return {
      figures: `${answered}/${count} answered (${statuses.join(',')}); fds ${before} → ${after} (+${after - before}) after the client hung up; a normal client then ${normal}`,
      contained: answered === count && after - before <= 2 && normal === 'connects',
    }
  })
}

// --- 2. subscriptions bounded in count, not bytes --------------------------------------------

async function longIds(): Promise<Omit<AttackResult, 'name'>> {
  return withServer({}, async (server) => {
    const before = await held(server)
    const idLength = 60_000
    const perConnection = 150
    const connections = 2
    const outcomes: string[] = []
    const sockets = await Promise.all(
      Array.from({ length: connections }, async (_, c) => {
        const ws = await open(`${server.clientUrl}/`)
        const end = closed(ws)
        let sent = 0
        // Inside frameBytes and framesPerSecond: one id per frame, 50 frames a second.
        for (; sent < perConnection && ws.readyState === WebSocket.OPEN; sent++) {
          const id = `${c}-${sent}-`.padEnd(idLength, 'x')
          ws.send(JSON.stringify({ command: 'subscribe', data: [id] }))
          await sleep(20)
        }
        await sleep(300)
        if (ws.readyState === WebSocket.OPEN) outcomes.push(`open after ${sent} ids`)
        else {
          const { code, reason } = await end
          outcomes.push(`${code} "${reason}" after ${sent} ids`)
        }
        return ws
      })
    )
    // Measured while the attackers are still connected: what their subscriptions hold.
    const grown = ((await held(server)) - before) / MB
    for (const ws of sockets) ws.terminate()
    const perSocket = grown / connections
    return {
      figures: `${connections} connections × up to ${perConnection} ids of ${idLength / 1000} kB: live memory +${grown.toFixed(1)} MiB (${perSocket.toFixed(1)} MiB per connection); ${outcomes.join('; ')}`,
      contained: perSocket < 1,
    }
  })
}

// --- 3. replay amplification -----------------------------------------------------------------

async function replayBurst(): Promise<Omit<AttackResult, 'name'>> {
  return withServer({}, async (server) => {
    const busy = 'PHID-BUSY-0000'
    const payload = 'x'.repeat(1000)
    for (let i = 0; i < 4000; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          post(server, JSON.stringify({ subscribers: [busy], n: i + j, payload }))
        )
      )
    }
    const watcher = await open(`${server.clientUrl}/`)
    const probe = bystander(watcher)
    const attacker = await open(`${server.clientUrl}/`)
    const end = closed(attacker)
    attacker.send(JSON.stringify({ command: 'subscribe', data: [busy] }))
    await sleep(100)
    const raw = (attacker as unknown as { _socket: Socket })._socket
    raw.pause()
    const before = rssOf(server.pid)
    let peak = before
    const frames = Array.from({ length: 90 }, () => '{"command":"replay","data":{"age":60000}}')
    // One TCP write carrying every frame, as the attack does it.
    raw.cork()
    for (const frame of frames) attacker.send(frame)
    raw.uncork()
    const deadline = Date.now() + 5000
    while (Date.now() < deadline) {
      peak = Math.max(peak, rssOf(server.pid))
      await sleep(50)
    }
    const worst = await probe.stop()
    raw.resume()
    const outcome = await Promise.race([end, sleep(3000).then(() => undefined)])
    attacker.terminate()
    watcher.close()
    const grown = (peak - before) / MB
    const code = outcome ? `closed ${outcome.code} "${outcome.reason}"` : 'still open'
    return {
      figures: `history ~4 MiB; 90 replays in one write from a non-reading socket: RSS peak +${grown.toFixed(0)} MiB; bystander ping max ${worst.toFixed(0)} ms; attacker ${code}`,
      contained: grown < 64 && worst < 500,
    }
  })
}

// --- 4. guessable origin ids -----------------------------------------------------------------

async function forgedOrigin(): Promise<Omit<AttackResult, 'name'>> {
  // A cluster peer makes the node mint origin ids; port 9 (discard) on loopback never answers.
  const cluster = [{ host: '127.0.0.1', port: 9, protocol: 'http' }]
  return withServer({ cluster }, async (server) => {
    const id = 'PHID-VICTIM-0001'
    const ws = await open(`${server.clientUrl}/`)
    ws.send(JSON.stringify({ command: 'subscribe', data: [id] }))
    await sleep(100)
    const probeReceipt = await post(server, JSON.stringify({ subscribers: [], uniqueID: 'probe' }))
    const fingerprint = (JSON.parse(probeReceipt.text) as { fingerprint: string }).fingerprint
    for (let n = 1; n <= 50; n++) {
      await post(
        server,
        JSON.stringify({ subscribers: [], 'tidings.origin': `${fingerprint}:${n.toString(36)}` })
      )
    }
    let received = 0
    ws.on('message', () => {
      received++
    })
    const sent = 20
    for (let i = 0; i < sent; i++) {
      await post(server, JSON.stringify({ type: 'notification', subscribers: [id], n: i }))
    }
    await sleep(500)
    ws.close()
    return {
      figures: `50 forged origin ids posted ahead; then ${sent} messages without uniqueID: ${received}/${sent} delivered`,
      contained: received === sent,
    }
  })
}

// --- 5. deep JSON ----------------------------------------------------------------------------

async function deepJson(): Promise<Omit<AttackResult, 'name'>> {
  return withServer({}, async (server) => {
    const id = 'PHID-DEEP-0001'
    const ws = await open(`${server.clientUrl}/`)
    ws.send(JSON.stringify({ command: 'subscribe', data: [id] }))
    await sleep(100)
    let received = 0
    ws.on('message', () => {
      received++
    })
    const depth = 6000
    const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`
    const bad = await post(server, `{"subscribers":["${id}"],"uniqueID":"deep-1","deep":${nested}}`)
    const code = /"code":"([a-z_]+)"/.exec(bad.text)?.[1] ?? '-'
    const good = await post(server, JSON.stringify({ subscribers: [id], uniqueID: 'deep-1' }))
    await sleep(300)
    ws.close()
    return {
      figures: `body nested ${depth} deep → ${bad.status} ${code}; corrected re-post (same uniqueID) → ${good.status}, delivered ${received}/1`,
      contained: bad.status >= 400 && bad.status < 500 && received === 1,
    }
  })
}

// --- degraded: history across many instances -------------------------------------------------

async function instanceFlood(): Promise<Omit<AttackResult, 'name'>> {
  return withServer({}, async (server) => {
    const before = rssOf(server.pid)
    const heldBefore = await held(server)
    const body = JSON.stringify({ subscribers: [], blob: 'y'.repeat(1_000_000) })
    const instances = 400
    let refused = 0
    let failed = 0
    for (let i = 0; i < instances && server.alive(); i += 10) {
      const replies = await Promise.all(
        Array.from({ length: 10 }, (_, j) => post(server, body, `?instance=flood-${i + j}`))
      )
      for (const reply of replies) {
        if (reply.status === 0) failed++
        else if (reply.status !== 200) refused++
      }
    }
    await sleep(500)
    const alive = server.alive()
    const grown = alive ? (rssOf(server.pid) - before) / MB : Number.NaN
    const kept = alive ? ((await held(server)) - heldBefore) / MB : Number.NaN
    return {
      figures: `${instances} × 1 MB POSTs to distinct instances: live memory +${kept.toFixed(0)} MiB, RSS +${grown.toFixed(0)} MiB, ${refused} refused, ${failed} unanswered`,
      contained: alive && kept < 100,
    }
  })
}

// --- degraded: TCP connections that never upgrade -------------------------------------------

async function idleConnections(): Promise<Omit<AttackResult, 'name'>> {
  return withServer({}, async (server) => {
    const port = clientPort(server)
    const before = fdCount(server.pid)
    const count = 1000
    const sockets: Socket[] = []
    for (let i = 0; i < count; i++) {
      const socket = createConnection({ host: '127.0.0.1', port })
      socket.on('error', () => {})
      // Half a request line, then nothing (slowloris).
      socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n')
      sockets.push(socket)
    }
    await sleep(2000)
    const held = fdCount(server.pid) - before
    const waitMs = 20_000
    await sleep(waitMs)
    const stillHeld = fdCount(server.pid) - before
    const open = sockets.filter(
      (socket) => !socket.destroyed && socket.readyState === 'open'
    ).length
    for (const socket of sockets) socket.destroy()
    return {
      figures: `${count} half-sent requests from one address: server held +${held} fds after 2 s, +${stillHeld} after ${(waitMs + 2000) / 1000} s (${open} still open at the client)`,
      contained: stillHeld < 100,
    }
  })
}

// --- degraded: log lines per refused request ------------------------------------------------

async function authFlood(): Promise<Omit<AttackResult, 'name'>> {
  return withServer({ secret: 'right-secret' }, async (server) => {
    const pattern = /Bad Request|unauthori[sz]ed|Unauthori[sz]ed|401/
    server.watch(pattern)
    const count = 2000
    for (let i = 0; i < count; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, () =>
          post(server, '{"subscribers":[]}', '', { 'x-tidings-secret': 'wrong' })
        )
      )
    }
    await sleep(300)
    const lines = server.count(pattern)
    return {
      figures: `${count} wrong-secret POSTs: ${lines} log lines`,
      contained: lines <= 5,
    }
  })
}

export const ATTACKS = {
  upgrade: ['Unparseable upgrade target (fd leak)', upgradeLeak],
  ids: ['Long subscription ids (bytes, not count)', longIds],
  replay: ['Replay burst from a non-reading socket', replayBurst],
  origin: ['Forged origin ids (dedup poisoning)', forgedOrigin],
  deep: ['Deeply nested JSON body', deepJson],
  instances: ['1 MB POSTs to many instances (history)', instanceFlood],
  idle: ['Connections that never upgrade', idleConnections],
  auth: ['Wrong-secret POST flood (log lines)', authFlood],
} as const

export async function runAttacks(only: readonly string[]): Promise<AttackResult[]> {
  const results: AttackResult[] = []
  for (const [key, [name, attack]] of Object.entries(ATTACKS)) {
    if (!only.includes(key)) continue
    process.stderr.write(`[attacks] ${name} ...\n`)
    try {
      results.push({ name, ...(await attack()) })
    } catch (error) {
      results.push({
        name,
        figures: `harness error: ${(error as Error).message}`,
        contained: false,
      })
    }
  }
  return results
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  let only: string[] = Object.keys(ATTACKS)
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    if (arg === '--only') only = (args[++i] ?? '').split(',')
    else if (arg.startsWith('--only=')) only = arg.slice(7).split(',')
    else {
      process.stderr.write(`usage: npm run attacks -- [--only ${Object.keys(ATTACKS).join(',')}]\n`)
      process.exit(2)
    }
  }
  const results = await runAttacks(only)
  process.stdout.write('\n| class | figures | contained |\n|---|---|---|\n')
  for (const result of results) {
    process.stdout.write(
      `| ${result.name} | ${result.figures} | ${result.contained ? 'yes' : 'NO'} |\n`
    )
  }
  process.exit(results.every((result) => result.contained) ? 0 : 1)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  void main()
}
