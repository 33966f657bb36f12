/**
 * `npm run soak`: a long run of a live `tidings run` on 127.0.0.1 under a realistic load —
 * many WebSocket clients (in child processes) that connect, subscribe, churn and
 * resubscribe, and a steady publisher — reporting RSS and the live heap over time. It fails
 * on sustained memory growth after warm-up, on any delivery a connected, subscribed client
 * did not get (or got twice), on a client the server closed, or on a failed POST.
 *
 *   npm run soak -- [--connections 10000] [--minutes 10] [--warmup 120] [--shards 4]
 *                   [--rate 50] [--churn 0.01] [--resubscribe 0.01] [--sample 10]
 *                   [--growth 0.05] [--seed 1] [--history-age MS] [--processes 1]
 *
 * `--churn` and `--resubscribe` are fractions of the connections per second. Memory is read
 * every `--sample` seconds after two full GCs (through a harness-only probe); growth is the
 * median of the last quarter of the post-warm-up samples over the median of the first.
 * `soak()` is also called by test/node/soak-short.test.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { processTree } from '../bench/proc.ts'
import { HOSTILE_TARGETS } from './hardening/attacks.ts'
import { hostileUpgrade, rawExchange } from './hardening/fuzz-clients.ts'
import { flags, MB, mb, rssOf, sleep, startTidings, status } from './hardening/node.ts'
import { Random } from './hardening/random.ts'
import {
  type Announcement,
  emptyFleetStats,
  type FleetCommand,
  type FleetReply,
  type FleetStats,
} from './hardening/soak-protocol.ts'

export interface SoakOptions {
  connections: number
  minutes: number
  /** Seconds of load before memory is judged (history and dedup fill up first). */
  warmup: number
  shards: number
  /** Messages per second. */
  rate: number
  /** Fractions of the connections closed-and-reopened, and resubscribed, per second. */
  churn: number
  resubscribe: number
  /** Seconds between memory samples. */
  sample: number
  /** Allowed growth (fraction) of the live heap and of RSS after warm-up. */
  growth: number
  seed: number
  /** Extra server configuration (e.g. a short history for short runs). */
  config?: Record<string, unknown>
  log?: (line: string) => void
}

export const SOAK_DEFAULTS: SoakOptions = {
  connections: 10_000,
  minutes: 10,
  warmup: 120,
  shards: 4,
  rate: 50,
  churn: 0.01,
  resubscribe: 0.01,
  sample: 10,
  growth: 0.05,
  seed: 1,
}

export interface MemoryPoint {
  t: number
  clients: number
  rss: number
  heap: number
  messagesIn: number
}

export interface SoakReport {
  ok: boolean
  failures: string[]
  samples: MemoryPoint[]
  growth: { heap: number; rss: number; judged: number }
  published: { ok: number; failed: number; perSecond: number }
  fleet: FleetStats
  /** Hostile upgrades sent alongside the load, how many were cut short, any left hanging. */
  upgrades: { sent: number; cut: number; hanging: number }
  seconds: number
}

const FLEET = fileURLToPath(new URL('./hardening/soak-fleet.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DEADLINE_MS = 5000
/** Cut-short hostile upgrades are closed at this deadline (checked on the server's 1 s sweep). */
const HANDSHAKE_TIMEOUT_MS = 2000
const UPGRADE_WAIT_MS = HANDSHAKE_TIMEOUT_MS + 1000 + 3000
const UPGRADES_PER_SECOND = 5

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

/** Growth of the last quarter's median over the first quarter's, after warm-up. */
export function growthOf(values: number[]): number {
  const quarter = Math.max(1, Math.floor(values.length / 4))
  const first = median(values.slice(0, quarter))
  const last = median(values.slice(-quarter))
  return first === 0 ? 0 : last / first - 1
}

class Shard {
  readonly child: ChildProcess
  #asks = new Map<number, (stats: FleetStats) => void>()
  #stopped: ((stats: FleetStats) => void) | undefined
  #nextAsk = 0

  constructor(maxMs: number) {
    this.child = spawn(process.execPath, ['--import', 'tsx', FLEET], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, SOAK_MAX_MS: String(maxMs) },
    })
    this.child.on('message', (raw) => {
      const reply = raw as FleetReply
      if (reply.type === 'stats') {
        this.#asks.get(reply.id)?.(reply.stats)
        this.#asks.delete(reply.id)
      } else {
        this.#stopped?.(reply.stats)
      }
    })
  }

  send(command: FleetCommand): void {
    if (this.child.connected) this.child.send(command)
  }

  stats(): Promise<FleetStats> {
    const id = this.#nextAsk++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('a fleet shard did not answer within 20 s')),
        20_000
      )
      this.#asks.set(id, (stats) => {
        clearTimeout(timer)
        resolve(stats)
      })
      this.send({ type: 'stats', id })
    })
  }

  stop(): Promise<FleetStats> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('a fleet shard did not stop within 20 s')),
        20_000
      )
      this.#stopped = (stats) => {
        clearTimeout(timer)
        resolve(stats)
      }
      this.send({ type: 'stop' })
    })
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL')
  }
}

function sum(all: FleetStats[]): FleetStats {
  const total = emptyFleetStats()
  for (const stats of all) {
    for (const key of Object.keys(total) as (keyof FleetStats)[]) {
      if (key === 'missingSamples') total.missingSamples.push(...stats.missingSamples)
      else total[key] += stats[key]
    }
  }
  total.evaluated = Math.round(total.evaluated / Math.max(1, all.length))
  return total
}

export async function soak(partial: Partial<SoakOptions> = {}): Promise<SoakReport> {
  const options = { ...SOAK_DEFAULTS, ...partial }
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`))
  const started = Date.now()
  const failures: string[] = []
  const fail = (message: string): void => {
    if (failures.length < 50) failures.push(message)
  }
  const totalMs = (options.minutes * 60 + options.connections / 100 + 120) * 1000
  const config = options.config ?? {}
  const server = await startTidings({
    probe: true,
    config: {
      ...config,
      // The fleet opens every connection at once from 127.0.0.1, as no browser population does.
      limits: {
        handshakesPerIp: 0,
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
        ...(config.limits as Record<string, unknown> | undefined),
      },
    },
  })
  const shards = Array.from({ length: options.shards }, () => new Shard(totalMs))
  const samples: MemoryPoint[] = []
  const published = { ok: 0, failed: 0, perSecond: 0 }
  const upgrades = { sent: 0, cut: 0, hanging: 0 }
  let fleet = sum([])
  const hardStop = setTimeout(() => {
    fail(`hard time limit of ${Math.round(totalMs / 1000)} s reached`)
    for (const shard of shards) shard.kill()
    server.child.kill('SIGKILL')
  }, totalMs)
  try {
    log(
      `soak: server pid ${server.pid}; opening ${options.connections} connections from ${options.shards} processes`
    )
    const per = Math.ceil(options.connections / options.shards)
    shards.forEach((shard, i) => {
      shard.send({
        type: 'start',
        url: server.clientUrl,
        connections: per,
        users: Math.max(1, Math.round(options.connections / 10)),
        objects: 200,
        churnPerSecond: options.churn * per,
        resubscribePerSecond: options.resubscribe * per,
        seed: options.seed * 1000 + i,
        deadlineMs: DEADLINE_MS,
      })
    })
    const rampDeadline = Date.now() + (options.connections / 100 + 60) * 1000
    for (;;) {
      const active = (await status(server.adminUrl, 'soak'))['clients.active'] as number
      if (active >= options.connections * 0.99) break
      if (Date.now() > rampDeadline)
        throw new Error(`only ${active} of ${options.connections} clients connected`)
      await sleep(500)
    }
    log(
      `soak: ${options.connections} connected in ${((Date.now() - started) / 1000).toFixed(1)} s; publishing ${options.rate}/s for ${options.minutes} min (warm-up ${options.warmup} s)`
    )

    const random = new Random(options.seed)
    const users = Math.max(1, Math.round(options.connections / 10))
    const announcements: Announcement[] = []
    const flush = setInterval(() => {
      if (announcements.length === 0) return
      const messages = announcements.splice(0)
      for (const shard of shards) shard.send({ type: 'announce', messages })
    }, 200)
    const loadStart = Date.now()
    const loadEnd = loadStart + options.minutes * 60_000
    let seq = 0
    let inFlight = 0
    const publishOne = async (): Promise<void> => {
      const n = ++seq
      const subscribers = [
        `PHID-USER-${random.int(users)}`,
        `PHID-USER-${random.int(users)}`,
        `PHID-USER-${random.int(users)}`,
        `PHID-OBJ-${random.int(200)}`,
      ]
      const body = JSON.stringify({
        key: String(n),
        type: 'notification',
        subscribers,
        uniqueID: `soak-${options.seed}-${n}`,
        seq: n,
      })
      const pStart = Date.now()
      inFlight++
      try {
        const response = await fetch(`${server.adminUrl}/?instance=soak`, {
          method: 'POST',
          body,
          signal: AbortSignal.timeout(10_000),
        })
        await response.text()
        if (response.status === 200) {
          published.ok++
          announcements.push({ seq: n, subscribers, pStart, pEnd: Date.now() })
        } else {
          published.failed++
          fail(`POST ${n} answered ${response.status}`)
        }
      } catch (error) {
        published.failed++
        fail(`POST ${n} failed: ${(error as Error).message}`)
      } finally {
        inFlight--
      }
    }
    const publisher = (async () => {
      const interval = 1000 / options.rate
      let next = Date.now()
      while (Date.now() < loadEnd && server.alive()) {
        if (inFlight < 32) void publishOne()
        next += interval
        const wait = next - Date.now()
        if (wait > 0) await sleep(wait)
        else if (wait < -1000) next = Date.now()
      }
      while (inFlight > 0) await sleep(20)
    })()

    // A trickle of hostile upgrades (bad targets, junk headers, requests cut short) the whole
    // time: each must be answered or closed, and none may stay counted once it is gone.
    const hostile = (async () => {
      const port = Number(new URL(server.clientUrl).port)
      const hostileRandom = new Random(options.seed * 7 + 3)
      const inFlight = new Set<Promise<void>>()
      while (Date.now() < loadEnd && server.alive()) {
        const { request, complete } = hostileUpgrade(hostileRandom, HOSTILE_TARGETS)
        upgrades.sent++
        if (!complete) upgrades.cut++
        const exchange = rawExchange(port, request, UPGRADE_WAIT_MS, false).then((result) => {
          if (result.timedOut && result.response === '') {
            upgrades.hanging++
            fail(`a hostile upgrade was neither answered nor closed in ${UPGRADE_WAIT_MS} ms`)
          }
        })
        inFlight.add(exchange)
        void exchange.then(() => inFlight.delete(exchange))
        await sleep(1000 / UPGRADES_PER_SECOND)
      }
      await Promise.all(inFlight)
    })()

    const sampleOnce = async (): Promise<void> => {
      const memory = await server.memory(true)
      // With worker processes: their memory too (the live heap is the primary's).
      const rss = processTree(server.pid).reduce((total, pid) => total + rssOf(pid), 0)
      const info = await status(server.adminUrl, 'soak')
      const point: MemoryPoint = {
        t: Math.round((Date.now() - loadStart) / 1000),
        clients: info['clients.active'] as number,
        rss,
        heap: memory.heapUsed,
        messagesIn: info['messages.in'] as number,
      }
      samples.push(point)
      fleet = sum(await Promise.all(shards.map((shard) => shard.stats())))
      log(
        `soak: t=${String(point.t).padStart(4)} s  clients ${point.clients}  RSS ${mb(rss).padStart(9)}  heap ${mb(point.heap).padStart(9)}  in ${point.messagesIn}  delivered ${fleet.received}  owed ${fleet.expected}  missing ${fleet.missing}  churned ${fleet.churned}`
      )
    }
    while (Date.now() < loadEnd && server.alive()) {
      await sleep(Math.min(options.sample * 1000, Math.max(0, loadEnd - Date.now())))
      if (Date.now() <= loadEnd + 1000) await sampleOnce()
    }
    await publisher
    await hostile
    published.perSecond = published.ok / ((Date.now() - loadStart) / 1000)
    await sleep(DEADLINE_MS + 1000)
    clearInterval(flush)
    for (const shard of shards) shard.send({ type: 'announce', messages: announcements.splice(0) })
    if (!server.alive()) throw new Error('the server exited')
    fleet = sum(await Promise.all(shards.map((shard) => shard.stop())))
    await checkReleased(server.adminUrl, fail)
  } catch (error) {
    fail(`aborted: ${(error as Error).message}`)
  } finally {
    clearTimeout(hardStop)
    for (const shard of shards) shard.kill()
    if (!server.alive())
      fail(`the server is not running; last output:\n${server.tail().slice(-20).join('\n')}`)
    await server.stop(10_000)
  }

  const judged = samples.filter((point) => point.t >= options.warmup)
  const growth = { heap: 0, rss: 0, judged: judged.length }
  if (judged.length >= 4) {
    growth.heap = growthOf(judged.map((point) => point.heap))
    growth.rss = growthOf(judged.map((point) => point.rss))
    if (growth.heap > options.growth)
      fail(
        `the live heap grew ${(growth.heap * 100).toFixed(1)} % after warm-up (limit ${options.growth * 100} %)`
      )
    if (growth.rss > options.growth)
      fail(
        `RSS grew ${(growth.rss * 100).toFixed(1)} % after warm-up (limit ${options.growth * 100} %)`
      )
  } else {
    fail(`only ${judged.length} memory samples after warm-up; run longer or sample more often`)
  }
  if (fleet.missing > 0)
    fail(
      `${fleet.missing} of ${fleet.expected} owed deliveries never arrived: ${fleet.missingSamples.join('; ')}`
    )
  if (fleet.duplicates > 0) fail(`${fleet.duplicates} deliveries arrived twice`)
  if (fleet.unexpectedCloses > 0) fail(`the server closed ${fleet.unexpectedCloses} clients`)
  if (fleet.connectErrors > 0) fail(`${fleet.connectErrors} connection attempts failed`)
  if (published.ok === 0) fail('nothing was published')
  if (fleet.expected === 0) fail('no delivery was owed to any client: the check proved nothing')
  return {
    ok: failures.length === 0,
    failures,
    samples,
    growth,
    published,
    fleet,
    upgrades,
    seconds: (Date.now() - started) / 1000,
  }
}

/** With every client gone, the server holds no client connection and no handshake. */
async function checkReleased(adminUrl: string, fail: (message: string) => void): Promise<void> {
  const deadline = Date.now() + HANDSHAKE_TIMEOUT_MS + 5000
  let budgets = { connections: -1, handshakes: -1 }
  while (Date.now() < deadline) {
    const response = await fetch(`${adminUrl}/stats.json`, { signal: AbortSignal.timeout(5000) })
    budgets = ((await response.json()) as { budgets: typeof budgets }).budgets
    if (budgets.connections === 0 && budgets.handshakes === 0) return
    await sleep(200)
  }
  fail(
    `the server still holds ${budgets.connections} client connections (${budgets.handshakes} handshaking) after every client left`
  )
}

export function summary(report: SoakReport): string {
  const { fleet, published, growth } = report
  const first = report.samples[0]
  const last = report.samples[report.samples.length - 1]
  return [
    `soak ${report.ok ? 'PASSED' : 'FAILED'} in ${report.seconds.toFixed(0)} s`,
    `  published ${published.ok} (${published.perSecond.toFixed(1)}/s), failed ${published.failed}`,
    `  clients: opened ${fleet.opened}, churned ${fleet.churned}, resubscribed ${fleet.resubscribed}, closed by the server ${fleet.unexpectedCloses}`,
    `  hostile upgrades: ${report.upgrades.sent} (${report.upgrades.cut} cut short), ${report.upgrades.hanging} left hanging; no connection or handshake held after the clients left`,
    `  deliveries: ${fleet.received} received; ${fleet.expected} owed to connected subscribers, ${fleet.missing} missing, ${fleet.duplicates} duplicated`,
    `  memory: RSS ${mb(first?.rss ?? 0)} → ${mb(last?.rss ?? 0)}, live heap ${mb(first?.heap ?? 0)} → ${mb(last?.heap ?? 0)}; growth after warm-up (${growth.judged} samples): heap ${(growth.heap * 100).toFixed(1)} %, RSS ${(growth.rss * 100).toFixed(1)} %`,
    ...report.failures.map((failure) => `  FAIL ${failure}`),
  ].join('\n')
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const options = flags(process.argv.slice(2), {
    connections: SOAK_DEFAULTS.connections,
    minutes: SOAK_DEFAULTS.minutes,
    warmup: SOAK_DEFAULTS.warmup,
    shards: SOAK_DEFAULTS.shards,
    rate: SOAK_DEFAULTS.rate,
    churn: SOAK_DEFAULTS.churn,
    resubscribe: SOAK_DEFAULTS.resubscribe,
    sample: SOAK_DEFAULTS.sample,
    growth: SOAK_DEFAULTS.growth,
    seed: SOAK_DEFAULTS.seed,
    'history-age': 0,
    processes: 1,
  })
  // A short history (and dedup memory) fills up within a short warm-up.
  const age = options['history-age']
  const config = {
    processes: options.processes,
    ...(age > 0
      ? {
          history: { age },
          relay: { maxAge: Math.min(30_000, Math.max(1000, age)), dedupAge: Math.max(1000, age) },
        }
      : {}),
  }
  const report = await soak({ ...options, config })
  process.stdout.write(`${summary(report)}\n`)
  process.stdout.write(
    `  samples (t s, clients, RSS MB, heap MB): ${report.samples.map((p) => `${p.t},${p.clients},${(p.rss / MB).toFixed(0)},${(p.heap / MB).toFixed(0)}`).join(' ')}\n`
  )
  process.exit(report.ok ? 0 : 1)
}
