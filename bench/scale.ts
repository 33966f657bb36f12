/**
 * Scale-out fabrics compared: the `cluster` full mesh against the Redis backplane (routing by
 * instance, and by subscriber id), at several node counts and message rates.
 *
 *   npm run bench:scale -- [--nodes 2,4,8] [--rates 100,1000] [--seconds 10] [--warmup 2]
 *                          [--clients 2] [--fabrics mesh,redis,redis-subscriber] [--json FILE]
 *
 * For each node count N and fabric it starts N `tidings run` processes on 127.0.0.1 (and, for
 * the Redis fabrics, one fresh redis-server), and connects `--clients` WebSocket subscribers
 * to each node, client j of node i subscribed to its own id `PHID-USER-n<i>c<j>…`. Message m
 * is addressed to every client id of ONE target node (round-robin, like a user's tabs) and
 * POSTed to a DIFFERENT origin node (round-robin over the others), so every delivery crosses
 * nodes. For each rate: `--warmup` s unmeasured, then `--seconds` s paced by a fixed 10 ms
 * tick that sends rate/100 messages per tick (catching up if a tick is late, never more than
 * MAX_IN_FLIGHT POSTs in flight), then a bounded wait for every owed frame.
 *
 * Measured per (fabric, N, rate), over the window from the first measured POST to the last
 * owed frame:
 * - latency: POST sent → frame received, one clock in this process; p50/p99/max, frames lost
 *   (owed, never came), duplicated, and misrouted (came to a client it was not for);
 * - CPU µs per message: utime+stime from /proc/<pid>/stat, summed over the N tidings
 *   processes, and redis-server's own (pid from INFO server); /proc ticks are 1/CLK_TCK s;
 * - ops per message: mesh, relayed requests (/status/ `cluster[].relayed`); Redis, commands
 *   (INFO commandstats, the bench's own INFO calls left out);
 * - node receptions per message: how many nodes took the message in from the fabric (mesh:
 *   the relayed requests again; Redis: /stats.json `backplane.received`, echoes of a node's
 *   own publishes not counted);
 * - RSS per node: VmRSS from /proc/<pid>/status after the run, mean over the N nodes;
 * - idle CPU (JSON only): each setup's processes over 2 s without traffic after its last run,
 *   and the tidings CPU per message net of it, to tell housekeeping from per-message work.
 * CPU per message falls steeply with the rate (at 100/s each message wakes every process it
 * touches on its own; at 1000/s they share event-loop turns): compare fabrics at equal rates.
 * Prints a markdown table and a JSON line. Every process is killed at the end, on errors and
 * on SIGINT/SIGTERM.
 */
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { resolve as resolvePath } from 'node:path'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import WebSocket from 'ws'
import {
  meshConfig,
  type NodePorts,
  nodePorts,
  peersOf,
  TidingsProcess,
} from '../test/helpers/cluster.ts'
import { RedisServer } from '../test/helpers/redis.ts'
import { CLK_TCK, cpuMicros, rssMb } from './proc.ts'

/** Run as the script (not imported by another bench for its helpers below). */
const isMain =
  process.argv[1] !== undefined && resolvePath(process.argv[1]) === import.meta.filename

const { values } = parseArgs({
  args: isMain ? undefined : [],
  options: {
    nodes: { type: 'string', default: '2,4,8' },
    rates: { type: 'string', default: '100,1000' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    clients: { type: 'string', default: '2' },
    fabrics: { type: 'string', default: 'mesh,redis,redis-subscriber' },
    json: { type: 'string' },
  },
})
const list = (text: string) => text.split(',').map((item) => item.trim())
const NODES = list(values.nodes).map(Number)
const RATES = list(values.rates).map(Number)
const SECONDS = Number(values.seconds)
const WARMUP = Number(values.warmup)
const CLIENTS = Number(values.clients)
const FABRICS = list(values.fabrics) as Fabric[]

type Fabric = 'mesh' | 'redis' | 'redis-subscriber'
const KNOWN: readonly Fabric[] = ['mesh', 'redis', 'redis-subscriber']
for (const fabric of FABRICS) {
  if (!KNOWN.includes(fabric)) throw new Error(`unknown fabric "${fabric}" (${KNOWN.join(', ')})`)
}
if (NODES.some((n) => !Number.isInteger(n) || n < 2)) throw new Error('--nodes: 2 or more each')

const TICK_MS = 10
const MAX_IN_FLIGHT = 512
/** Bound on the wait for owed frames after the last POST, and on readiness waits. */
const OWED_MS = 10_000
/** After the last owed frame, how long duplicates and strays may still arrive. */
const GRACE_MS = 250
/** After a setup's last run: a settle, then the window its idle CPU is read over. */
const IDLE_SETTLE_MS = 1000
const IDLE_MS = 2000

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits

/**
 * After a run: prints the machine, its load average before (`loadBefore`) and now, and the
 * run's length since `started` (performance.now()); returns them for the run's JSON.
 */
export function runSummary(loadBefore: number[], started: number) {
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? '?', node: process.version }
  const loadAverage = { before: loadBefore, after: loadavg() }
  const runSeconds = round((performance.now() - started) / 1000, 1)
  const load = (values: number[]) => values.map((l) => round(l)).join(' ')
  console.log(
    `\n${machine.cpus} × ${machine.model}, Node ${machine.node}, load average ${load(loadAverage.before)} before, ${load(loadAverage.after)} after, ${runSeconds} s in all\n`
  )
  return { ...machine, loadAverage, runSeconds }
}

// --- subscribers ------------------------------------------------------------------------------

/** One WebSocket subscribed to one id; `arrivals` maps key → arrival times (ms). */
interface Client {
  readonly id: string
  readonly arrivals: Map<string, number[]>
  readonly ws: WebSocket
}

const clientId = (node: number, client: number) => `PHID-USER-n${node}c${client}`.padEnd(30, 'x') // as long as a real PHID

/** Opens a socket, subscribes it, and resolves once a ping after the subscribe is answered. */
async function subscribe(url: string, id: string): Promise<Client> {
  const ws = new WebSocket(`${url}/`)
  const arrivals = new Map<string, number[]>()
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no pong from ${url}`)), OWED_MS)
    ws.on('error', (error) => {
      clearTimeout(timer)
      reject(error) // a no-op once subscribed
    })
    ws.once('open', () => {
      ws.send(JSON.stringify({ command: 'subscribe', data: [id] }))
      ws.send(JSON.stringify({ command: 'ping', data: null }))
    })
    ws.on('message', (data) => {
      const at = performance.now()
      const frame = JSON.parse(data.toString()) as { key?: string; type?: string }
      if (frame.type === 'pong') {
        clearTimeout(timer)
        resolve()
      } else if (frame.key !== undefined) {
        const times = arrivals.get(frame.key)
        if (times) times.push(at)
        else arrivals.set(frame.key, [at])
      }
    })
  })
  return { id, arrivals, ws }
}

// --- setups -----------------------------------------------------------------------------------

interface Setup {
  fabric: Fabric
  nodes: TidingsProcess[]
  redis: RedisServer | undefined
  redisPid: number | undefined
  /** clients[i]: the subscribers on node i. */
  clients: Client[][]
  pools: Pool[]
  /** Kills every process of the setup (safe to call twice). */
  dispose: () => Promise<void>
}

/** Everything started and not yet disposed, for the finally blocks and the signal handler. */
const live = new Set<() => Promise<void>>()

function nodeConfig(fabric: Fabric, self: NodePorts, all: NodePorts[], redis?: RedisServer) {
  const drain = { drain: { window: 0 } }
  if (fabric === 'mesh') return meshConfig(self, all, drain)
  const routing = fabric === 'redis' ? 'instance' : 'subscriber'
  const backplane = { type: 'redis', url: redis?.url, prefix: 'bench:', routing }
  return meshConfig(self, [], { ...drain, backplane })
}

async function startSetup(fabric: Fabric, count: number): Promise<Setup> {
  const kill = async () => {
    for (const client of setup.clients.flat()) client.ws.terminate()
    await Promise.all(setup.pools.map((pool) => pool.destroy()))
    await Promise.all(setup.nodes.map((node) => node.dispose()))
    await setup.redis?.dispose()
  }
  const dispose = async () => {
    live.delete(kill)
    await kill()
  }
  const setup: Setup = {
    fabric,
    nodes: [],
    redis: undefined,
    redisPid: undefined,
    clients: [],
    pools: [],
    dispose,
  }
  live.add(kill)
  try {
    if (fabric !== 'mesh') {
      setup.redis = await RedisServer.start()
      const info = await setup.redis.cli('INFO', 'server')
      setup.redisPid = Number(/^process_id:(\d+)/m.exec(info)?.[1])
    }
    const ports = await nodePorts(count)
    setup.nodes = ports.map(
      (self) => new TidingsProcess(self, nodeConfig(fabric, self, ports, setup.redis))
    )
    await Promise.all(setup.nodes.map((node) => node.start()))
    setup.pools = setup.nodes.map(
      (node) => new Pool(node.adminUrl, { connections: 16, pipelining: 1 })
    )
    setup.clients = await Promise.all(
      setup.nodes.map((node, i) =>
        Promise.all(
          Array.from({ length: CLIENTS }, (_, j) => subscribe(node.clientUrl, clientId(i, j)))
        )
      )
    )
    if (fabric !== 'mesh') await backplaneReady(setup)
    return setup
  } catch (error) {
    await dispose()
    throw error
  }
}

async function statsOf(node: TidingsProcess): Promise<Record<string, unknown>> {
  const response = await fetch(`${node.adminUrl}/stats.json`, { signal: AbortSignal.timeout(3000) })
  return (await response.json()) as Record<string, unknown>
}

interface BackplaneView {
  up: boolean
  channels: number
  received: number
  published: number
  dropped: number
  failures: number
}

async function backplaneOf(node: TidingsProcess): Promise<BackplaneView> {
  return (await statsOf(node)).backplane as BackplaneView
}

/** Every node connected to Redis and subscribed to the channels its sockets need (bounded). */
async function backplaneReady(setup: Setup): Promise<void> {
  const wanted = setup.fabric === 'redis' ? 1 : CLIENTS
  const deadline = Date.now() + OWED_MS
  for (;;) {
    const views = await Promise.all(setup.nodes.map(backplaneOf))
    if (views.every((view) => view.up && view.channels >= wanted)) return
    if (Date.now() > deadline) throw new Error(`backplane not ready: ${JSON.stringify(views)}`)
    await sleep(50)
  }
}

// --- counters ---------------------------------------------------------------------------------

interface Counters {
  /** µs, per tidings process. */
  cpu: number[]
  redisCpu: number
  /** This process (the publisher and every subscriber). */
  benchCpu: number
  /** Relayed requests (mesh) or backplane receptions (Redis), summed over the nodes. */
  receptions: number
  relayHealth: { dropped: number; failed: number }
  backplaneHealth: { dropped: number; failures: number }
  commands: Map<string, number>
}

/** `INFO commandstats` as command → calls, without the bench's own INFO calls. */
async function commandCalls(redis: RedisServer | undefined): Promise<Map<string, number>> {
  const calls = new Map<string, number>()
  if (!redis) return calls
  for (const match of (await redis.cli('INFO', 'commandstats')).matchAll(
    /^cmdstat_([^:]+):calls=(\d+)/gm
  )) {
    if (match[1] !== 'info') calls.set(match[1] as string, Number(match[2]))
  }
  return calls
}

async function fabricCounters(
  setup: Setup
): Promise<Omit<Counters, 'cpu' | 'redisCpu' | 'benchCpu'>> {
  const counters = {
    receptions: 0,
    relayHealth: { dropped: 0, failed: 0 },
    backplaneHealth: { dropped: 0, failures: 0 },
    commands: await commandCalls(setup.redis),
  }
  if (setup.fabric === 'mesh') {
    for (const peers of await Promise.all(setup.nodes.map((node) => peersOf(node.adminUrl)))) {
      for (const peer of peers) {
        counters.receptions += peer.relayed
        counters.relayHealth.dropped += peer.dropped
        counters.relayHealth.failed += peer.failed
      }
    }
  } else {
    for (const view of await Promise.all(setup.nodes.map(backplaneOf))) {
      counters.receptions += view.received
      counters.backplaneHealth.dropped += view.dropped
      counters.backplaneHealth.failures += view.failures
    }
  }
  return counters
}

const cpuOf = (setup: Setup) => {
  const bench = process.cpuUsage()
  return {
    cpu: setup.nodes.map((node) => cpuMicros(node.pid)),
    redisCpu: setup.redisPid ? cpuMicros(setup.redisPid) : 0,
    benchCpu: bench.user + bench.system,
  }
}

/** Before the window: the HTTP and INFO reads first, so their cost stays outside it. */
async function countersBefore(setup: Setup): Promise<Counters> {
  const fabric = await fabricCounters(setup)
  return { ...fabric, ...cpuOf(setup) }
}

/** After the window: CPU first, for the same reason. */
async function countersAfter(setup: Setup): Promise<Counters> {
  const cpu = cpuOf(setup)
  return { ...(await fabricCounters(setup)), ...cpu }
}

// --- driving ----------------------------------------------------------------------------------

interface Sent {
  at: number
  target: number
}

interface Drive {
  sent: Map<string, Sent>
  /** POSTs not answered 200 (refused, failed or timed out). */
  refused: number
  /** ms from the first POST to the last one sent. */
  sendMs: number
  /** ms from the first POST to the last owed frame (or the bounded wait's end). */
  windowMs: number
  bodyBytes: number
}

/** Message m: to the clients of node m mod N, posted to another node (round-robin too). */
function route(m: number, count: number): { target: number; origin: number } {
  const target = m % count
  const offset = 1 + (Math.floor(m / count) % (count - 1))
  return { target, origin: (target + offset) % count }
}

/** Phorge-like chronological keys (19 digits), unique across the whole run. */
const KEY_EPOCH = Math.floor(Date.now() / 1000)
let keys = 0
const nextKey = () => `${KEY_EPOCH}${String(keys++).padStart(9, '0')}`

function body(key: string, target: number): string {
  return JSON.stringify({
    type: 'notification',
    key,
    uniqueID: randomUUID().replaceAll('-', ''),
    subscribers: Array.from({ length: CLIENTS }, (_, j) => clientId(target, j)),
  })
}

export async function post(pool: Pool, text: string): Promise<boolean> {
  try {
    const response = await pool.request({
      method: 'POST',
      path: '/',
      headers: { 'content-type': 'application/json' },
      body: text,
      headersTimeout: OWED_MS,
      bodyTimeout: OWED_MS,
    })
    await response.body.text()
    return response.statusCode === 200
  } catch {
    return false
  }
}

/** Sends `rate`/s for `seconds`: rate/100 messages every 10 ms tick, late ticks caught up. */
async function send(setup: Setup, rate: number, seconds: number, into: Drive) {
  const count = setup.nodes.length
  const total = Math.round(rate * seconds)
  const perTick = (rate * TICK_MS) / 1000
  const pending = new Set<Promise<void>>()
  const start = performance.now()
  let m = 0
  for (let tick = 1; m < total; tick++) {
    const due = Math.min(total, Math.round(tick * perTick))
    for (; m < due; m++) {
      while (pending.size >= MAX_IN_FLIGHT) await Promise.race(pending)
      const { target, origin } = route(m, count)
      const key = nextKey()
      const text = body(key, target)
      into.bodyBytes = Buffer.byteLength(text)
      into.sent.set(key, { at: performance.now(), target })
      const request = post(setup.pools[origin] as Pool, text).then((ok) => {
        if (!ok) into.refused++
        pending.delete(request)
      })
      pending.add(request)
    }
    const wait = start + tick * TICK_MS - performance.now()
    if (wait > 0) await sleep(wait)
  }
  into.sendMs = performance.now() - start
  await Promise.all(pending)
}

/** Frames still owed: each sent message, once to every client of its target node. */
function owed(setup: Setup, sent: Map<string, Sent>): number {
  let missing = 0
  for (const [key, { target }] of sent) {
    for (const client of setup.clients[target] ?? []) if (!client.arrivals.has(key)) missing++
  }
  return missing
}

async function drive(setup: Setup, rate: number, seconds: number): Promise<Drive> {
  for (const client of setup.clients.flat()) client.arrivals.clear()
  const into: Drive = { sent: new Map(), refused: 0, sendMs: 0, windowMs: 0, bodyBytes: 0 }
  const start = performance.now()
  await send(setup, rate, seconds, into)
  const deadline = performance.now() + OWED_MS
  while (owed(setup, into.sent) > 0 && performance.now() < deadline) await sleep(20)
  into.windowMs = performance.now() - start
  await sleep(GRACE_MS)
  return into
}

// --- results ----------------------------------------------------------------------------------

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

/** Latency samples, lost, duplicated and misrouted frames of one measured run. */
function deliveries(setup: Setup, sent: Map<string, Sent>) {
  const samples: number[] = []
  let lost = 0
  let duplicates = 0
  let misrouted = 0
  setup.clients.forEach((clients, node) => {
    for (const client of clients) {
      for (const [key, times] of client.arrivals) {
        const message = sent.get(key)
        if (!message) continue // a warm-up straggler
        if (message.target !== node) {
          misrouted += times.length
          continue
        }
        duplicates += times.length - 1
        for (const time of times) samples.push(time - message.at)
      }
    }
  })
  for (const [key, { target }] of sent) {
    for (const client of setup.clients[target] ?? []) if (!client.arrivals.has(key)) lost++
  }
  samples.sort((a, b) => a - b)
  return { samples, lost, duplicates, misrouted }
}

/** Per-message deltas of the Redis commands, by command. */
function commandsPerMessage(before: Counters, after: Counters, messages: number) {
  const perMessage: Record<string, number> = {}
  let total = 0
  for (const [command, calls] of after.commands) {
    const delta = calls - (before.commands.get(command) ?? 0)
    if (delta <= 0) continue
    total += delta
    perMessage[command] = round(delta / messages, 3)
  }
  return { total: round(total / messages, 3), byCommand: perMessage }
}

function row(setup: Setup, rate: number, run: Drive, before: Counters, after: Counters) {
  const messages = run.sent.size
  const { samples, lost, duplicates, misrouted } = deliveries(setup, run.sent)
  const cpu = after.cpu.reduce((sum, value, i) => sum + value - (before.cpu[i] as number), 0)
  const commands = commandsPerMessage(before, after, messages)
  const receptions = round((after.receptions - before.receptions) / messages, 3)
  const rss = setup.nodes.map((node) => rssMb(node.pid))
  return {
    fabric: setup.fabric,
    nodes: setup.nodes.length,
    rate,
    messages,
    sentRate: round(messages / (run.sendMs / 1000), 1),
    windowSeconds: round(run.windowMs / 1000, 2),
    bodyBytes: run.bodyBytes,
    frames: samples.length,
    p50: round(percentile(samples, 50), 3),
    p99: round(percentile(samples, 99), 3),
    max: round(samples.at(-1) ?? Number.NaN, 3),
    lost,
    duplicates,
    misrouted,
    refusedPosts: run.refused,
    tidingsCpuMicrosPerMessage: round(cpu / messages, 1),
    redisCpuMicrosPerMessage: setup.redis
      ? round((after.redisCpu - before.redisCpu) / messages, 1)
      : null,
    benchCpuMicrosPerMessage: round((after.benchCpu - before.benchCpu) / messages, 1),
    opsPerMessage: setup.fabric === 'mesh' ? receptions : commands.total,
    redisCommandsPerMessage: setup.redis ? commands.byCommand : null,
    nodeReceptionsPerMessage: receptions,
    relay:
      setup.fabric === 'mesh'
        ? {
            dropped: after.relayHealth.dropped - before.relayHealth.dropped,
            failed: after.relayHealth.failed - before.relayHealth.failed,
          }
        : null,
    backplane: setup.redis
      ? {
          dropped: after.backplaneHealth.dropped - before.backplaneHealth.dropped,
          failures: after.backplaneHealth.failures - before.backplaneHealth.failures,
        }
      : null,
    rssMbPerNode: round(rss.reduce((a, b) => a + b, 0) / rss.length, 1),
    redisRssMb: setup.redisPid ? round(rssMb(setup.redisPid), 1) : null,
    load1: round(loadavg()[0] as number),
  }
}

interface Idle {
  /** Cores, summed over the tidings processes. */
  tidings: number
  redis: number | null
}

type Row = ReturnType<typeof row> & {
  idleCores?: Idle
  /** tidingsCpuMicrosPerMessage less what the nodes use idle over the same window. */
  tidingsCpuMicrosPerMessageNetOfIdle?: number
}

/** CPU the setup's processes use with no traffic (timers, housekeeping), after a settle. */
async function idleCores(setup: Setup): Promise<Idle> {
  await sleep(IDLE_SETTLE_MS)
  const before = cpuOf(setup)
  await sleep(IDLE_MS)
  const after = cpuOf(setup)
  const tidings = after.cpu.reduce((sum, value, i) => sum + value - (before.cpu[i] as number), 0)
  return {
    tidings: round(tidings / (IDLE_MS * 1000), 3),
    redis: setup.redis ? round((after.redisCpu - before.redisCpu) / (IDLE_MS * 1000), 3) : null,
  }
}

function withIdle(r: Row, idle: Idle): Row {
  const idlePerMessage = (idle.tidings * r.windowSeconds * 1e6) / r.messages
  return {
    ...r,
    idleCores: idle,
    tidingsCpuMicrosPerMessageNetOfIdle: round(r.tidingsCpuMicrosPerMessage - idlePerMessage, 1),
  }
}

function table(rows: Row[]): string {
  const dash = (value: number | null) => (value === null ? '–' : String(value))
  const lines = [
    '| fabric | nodes | msg/s | p50 ms | p99 ms | max ms | lost | dup | tidings CPU µs/msg | redis CPU µs/msg | ops/msg | node receptions/msg | RSS MB/node |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ]
  for (const r of rows) {
    lines.push(
      `| ${r.fabric} | ${r.nodes} | ${r.rate} | ${r.p50} | ${r.p99} | ${r.max} | ${r.lost} | ${r.duplicates} | ${r.tidingsCpuMicrosPerMessage} | ${dash(r.redisCpuMicrosPerMessage)} | ${r.opsPerMessage} | ${r.nodeReceptionsPerMessage} | ${r.rssMbPerNode} |`
    )
  }
  return lines.join('\n')
}

// --- main -------------------------------------------------------------------------------------

async function measure(setup: Setup, rate: number): Promise<Row> {
  await drive(setup, rate, WARMUP)
  const before = await countersBefore(setup)
  const run = await drive(setup, rate, SECONDS)
  const after = await countersAfter(setup)
  return row(setup, rate, run, before, after)
}

async function runSetup(fabric: Fabric, count: number): Promise<(Row | Failure)[]> {
  console.error(`[${new Date().toISOString()}] ${fabric}, ${count} nodes: starting`)
  let setup: Setup | undefined
  try {
    setup = await startSetup(fabric, count)
    const rows: Row[] = []
    for (const rate of RATES) {
      const result = await measure(setup, rate)
      console.error(
        `  ${rate} msg/s: p50 ${result.p50} ms, p99 ${result.p99} ms, lost ${result.lost}, dup ${result.duplicates}, sent at ${result.sentRate}/s, load ${result.load1}`
      )
      rows.push(result)
    }
    const idle = await idleCores(setup)
    console.error(`  idle: tidings ${idle.tidings} cores in all, redis ${idle.redis ?? '–'}`)
    return rows.map((r) => withIdle(r, idle))
  } catch (error) {
    console.error(`  failed: ${(error as Error).stack ?? error}`)
    const output = setup?.nodes.flatMap((node) => node.output.slice(-5)) ?? []
    return [{ fabric, nodes: count, error: String(error), output }]
  } finally {
    await setup?.dispose()
  }
}

interface Failure {
  fabric: Fabric
  nodes: number
  error: string
  output: string[]
}

async function disposeAll(): Promise<void> {
  await Promise.race([Promise.all([...live].map((dispose) => dispose())), sleep(OWED_MS)])
}

let stopping = false
for (const signal of isMain ? (['SIGINT', 'SIGTERM'] as const) : []) {
  process.once(signal, async () => {
    console.error(`${signal}: stopping every process`)
    stopping = true
    await disposeAll()
    await disposeAll() // whatever a setup still starting spawned in the meantime
    process.exit(130)
  })
}

async function main(): Promise<void> {
  const started = performance.now()
  const loadBefore = loadavg()
  console.error(
    `tidings bench:scale: nodes ${NODES.join(',')}, rates ${RATES.join(',')} msg/s, ${SECONDS} s (+${WARMUP} s warm-up), ${CLIENTS} clients per node, fabrics ${FABRICS.join(',')}`
  )
  const results: (Row | Failure)[] = []
  try {
    for (const count of NODES) {
      for (const fabric of FABRICS) {
        if (!stopping) results.push(...(await runSetup(fabric, count)))
      }
    }
  } finally {
    await disposeAll()
  }
  const rows = results
    .filter((r): r is Row => !('error' in r))
    .sort(
      (a, b) =>
        KNOWN.indexOf(a.fabric) - KNOWN.indexOf(b.fabric) || a.nodes - b.nodes || a.rate - b.rate
    )
  const failures = results.filter((r): r is Failure => 'error' in r)
  const summary = runSummary(loadBefore, started)
  console.log(table(rows))
  for (const failure of failures)
    console.log(`\n${failure.fabric}, ${failure.nodes} nodes failed: ${failure.error}`)
  const report = {
    bench: 'scale',
    ...summary,
    clkTck: CLK_TCK,
    params: {
      nodes: NODES,
      rates: RATES,
      seconds: SECONDS,
      warmup: WARMUP,
      clients: CLIENTS,
      fabrics: FABRICS,
    },
    rows,
    failures,
  }
  console.log(`\n${JSON.stringify(report)}`)
  if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`)
  // Keep-alive sockets and timers of helpers must not hold the process open.
  process.exit(failures.length > 0 ? 1 : 0)
}

if (isMain) await main()
