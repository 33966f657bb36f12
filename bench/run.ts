/**
 * `npm run bench`: tidings against a bare-`ws` baseline and the same with per-tick cork,
 * in one run, driven by the same client fleet (child processes, 127.0.0.1 only).
 * `npm run bench -- --help` lists the parameters. Prints a table and writes JSON to
 * bench-results/. Every child is killed at the end, on failure, on a signal and at --max-minutes.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Fleet } from './fleet-control.ts'
import { Publisher } from './publisher.ts'
import { printReport, type ServerResult } from './report.ts'
import { eachClient, measureAdmin, measureRun, SHARED_ID } from './scenarios.ts'
import { type RunningServer, type ServerKind, startServer } from './servers.ts'

const PARTS = ['targeted', 'memory', 'eld', 'broadcast', 'slow', 'admin', 'processes'] as const
type Part = (typeof PARTS)[number]

const HELP = `Usage: npm run bench -- [options]

  --quick               small sizes, under a minute
  --servers LIST        comma list of ws, ws-cork, tidings (default: all three)
  --clients N           clients for the main broadcast (default 5000; quick 2000)
  --messages N          broadcast POSTs in the main run (default 200; quick 60)
  --big N               idle connections for memory per connection, then targeted CPU and a
                        broadcast with event-loop delay (default 10000; quick 3000)
  --small N             connections for the second targeted run (default 1000)
  --big-messages N      broadcast POSTs at --big clients, for event-loop delay (default 40; quick 10)
  --targeted N          targeted POSTs per size and round (default 4000; quick 1000)
  --rounds N            targeted rounds, alternating --big and --small; the lowest CPU per
                        size is reported (default 3; quick 1)
  --admin N             admin POSTs with no subscribers (default 8000; quick 2000)
  --inflight N          POSTs in flight (default 8)
  --shards N            client fleet processes (default 2)
  --payload BYTES       extra bytes per message (default 0)
  --slow-clients N      clients in the slow-consumer runs (default 1000; quick 500)
  --slow-percent P      share of them that stop reading (default 1)
  --slow-messages N     POSTs per slow-consumer run (default 320)
  --slow-payload BYTES  extra bytes per message there (default 16384: 320 × 16 KiB is more
                        than the ~4 MiB the kernel buffers for a socket that is not read)
  --slow-bytes BYTES    slow-consumer cap for every server (default 262144)
  --only LIST           parts to run (default all): targeted,memory,eld,broadcast,slow,admin,
                        processes (tidings alone at processes 1, 2 and auto: paced 5 and 20
                        posts/s and saturated broadcast to --clients, and targeted; it is
                        bench/processes.ts, npm run bench:processes, and its table comes last)
  --profile DIR         write V8 CPU profiles of each server's main broadcast, first targeted
                        runs and admin run to DIR
  --tidings-config JSON merged into tidings' config, e.g. '{"websocket":{"heartbeat":0}}'
  --node-flags=FLAGS    extra Node flags for the server processes, e.g. --node-flags=--cpu-prof
  --cpu N               pin each server to CPU N with taskset (default: no pinning)
  --max-minutes M       hard limit for the whole run (default 15)
  --out DIR             where the JSON goes (default bench-results)
  --json                also print the JSON to stdout, after the table`

const { values } = parseArgs({
  options: {
    help: { type: 'boolean', short: 'h' },
    quick: { type: 'boolean', default: false },
    servers: { type: 'string', default: 'ws,ws-cork,tidings' },
    clients: { type: 'string' },
    messages: { type: 'string' },
    small: { type: 'string' },
    big: { type: 'string' },
    'big-messages': { type: 'string' },
    targeted: { type: 'string' },
    rounds: { type: 'string' },
    admin: { type: 'string' },
    inflight: { type: 'string', default: '8' },
    shards: { type: 'string', default: '2' },
    payload: { type: 'string', default: '0' },
    'slow-clients': { type: 'string' },
    'slow-percent': { type: 'string', default: '1' },
    'slow-messages': { type: 'string', default: '320' },
    'slow-payload': { type: 'string', default: '16384' },
    'slow-bytes': { type: 'string', default: '262144' },
    only: { type: 'string', default: PARTS.join(',') },
    'node-flags': { type: 'string', default: '' },
    'tidings-config': { type: 'string', default: '{}' },
    profile: { type: 'string' },
    cpu: { type: 'string' },
    'max-minutes': { type: 'string', default: '15' },
    out: { type: 'string', default: 'bench-results' },
    json: { type: 'boolean', default: false },
  },
})

if (values.help) {
  process.stdout.write(`${HELP}\n`)
  process.exit(0)
}

const quick = values.quick === true
function num(name: keyof typeof values, normal: number, fast = normal): number {
  const raw = values[name]
  const value = raw === undefined ? (quick ? fast : normal) : Number(raw)
  if (!Number.isFinite(value) || value < 0) {
    process.stderr.write(`bench: --${name} must be a non-negative number\n`)
    process.exit(2)
  }
  return value
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text)
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      return value as Record<string, unknown>
    }
  } catch {}
  process.stderr.write('bench: --tidings-config must be a JSON object\n')
  process.exit(2)
}

const options = {
  quick,
  servers: String(values.servers).split(',') as ServerKind[],
  clients: num('clients', 5000, 2000),
  messages: num('messages', 200, 60),
  small: num('small', 1000),
  big: num('big', 10000, 3000),
  bigMessages: num('big-messages', 40, 10),
  targeted: num('targeted', 4000, 1000),
  rounds: Math.max(1, num('rounds', 3, 1)),
  admin: num('admin', 8000, 2000),
  inflight: num('inflight', 8),
  shards: num('shards', 2),
  payload: num('payload', 0),
  slowClients: num('slow-clients', 1000, 500),
  slowPercent: num('slow-percent', 1),
  slowMessages: num('slow-messages', 320),
  slowPayload: num('slow-payload', 16384),
  slowBytes: num('slow-bytes', 262144),
  only: String(values.only).split(',') as Part[],
  nodeFlags: String(values['node-flags']).split(' ').filter(Boolean),
  tidingsConfig: parseJson(String(values['tidings-config'])),
  cpu: values.cpu === undefined ? undefined : num('cpu', 0),
  maxMinutes: num('max-minutes', 15),
}
for (const part of options.only) {
  if (!PARTS.includes(part)) {
    process.stderr.write(`bench: unknown part "${part}" in --only\n`)
    process.exit(2)
  }
}
for (const kind of options.servers) {
  if (!['ws', 'ws-cork', 'tidings'].includes(kind)) {
    process.stderr.write(`bench: unknown server "${kind}" in --servers\n`)
    process.exit(2)
  }
}

const maxMs = options.maxMinutes * 60_000
const cleanups = new Set<() => Promise<void>>()
async function cleanup(): Promise<void> {
  await Promise.all([...cleanups].map((stop) => stop().catch(() => {})))
  cleanups.clear()
}
const hardStop = setTimeout(() => {
  process.stderr.write(`bench: --max-minutes (${options.maxMinutes}) reached, stopping\n`)
  cleanup().finally(() => process.exit(2))
}, maxMs)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanup().finally(() => process.exit(130))
  })
}

const log = (line: string): void => {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const runTimeout = (deliveries: number): number => Math.min(maxMs, 30_000 + deliveries / 20)

const want = (part: Part): boolean => options.only.includes(part)

async function benchServer(kind: ServerKind): Promise<ServerResult> {
  log(`${kind}: starting`)
  const server: RunningServer = await startServer(kind, {
    slowBytes: options.slowBytes,
    tidingsConfig: options.tidingsConfig,
    maxMs,
    cpu: options.cpu,
    nodeFlags: options.nodeFlags,
  })
  cleanups.add(server.stop)
  const fleet = await Fleet.start(options.shards, maxMs)
  const stopFleet = () => fleet.stop()
  cleanups.add(stopFleet)
  const publisher = new Publisher(server.adminUrl, options.inflight)
  const result: ServerResult = { kind }
  const targetedRun = (messages: number) =>
    measureRun(server, fleet, publisher, {
      messages,
      subscribers: eachClient(fleet),
      expected: messages,
      payload: options.payload,
      timeoutMs: runTimeout(messages * 50),
    })
  const broadcast = (messages: number, payload: number, readers: number) =>
    measureRun(server, fleet, publisher, {
      messages,
      subscribers: () => [SHARED_ID],
      expected: messages * readers,
      payload,
      timeoutMs: runTimeout(messages * fleet.total),
    })
  /** Runs `run` under a CPU profile of the server when --profile is given. */
  const profiled = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const dir = values.profile
    if (dir === undefined) return run()
    await server.profile('start')
    const value = await run()
    mkdirSync(dir, { recursive: true })
    const path = join(dir, `${kind}-${name}.cpuprofile`)
    await server.profile('stop', path)
    log(`${kind}: wrote ${path}`)
    return value
  }
  try {
    const idle = await server.sample({ gc: true })
    result.idleRssMB = idle.rss / 1048576

    if (want('targeted') || want('memory') || want('eld')) {
      // Memory first, on a fresh server, after GC: idle → big/2 → big idle subscribed
      // connections. The slope over the second half is the cost of one more connection;
      // from idle also carries one-off growth (young generation, code), shown separately.
      log(`${kind}: ${options.big} clients${want('memory') ? ', memory' : ''}`)
      const half = Math.floor(options.big / 2)
      await fleet.connectTo(server.clientUrl, half, SHARED_ID)
      await sleep(500)
      const middle = await server.sample({ gc: true })
      await fleet.connectTo(server.clientUrl, options.big, SHARED_ID)
      await sleep(500)
      const big = await server.sample({ gc: true })
      const added = options.big - half
      result.rssPerConnKB = (big.rss - middle.rss) / added / 1024
      result.heapPerConnKB = (big.heapUsed - middle.heapUsed) / added / 1024
      result.rssPerConnFromIdleKB = (big.rss - idle.rss) / options.big / 1024
      result.rssAtBigMB = big.rss / 1048576
    }
    if (want('targeted')) {
      log(`${kind}: ${options.big} clients, targeted`)
      await targetedRun(Math.min(1000, options.targeted)) // warm-up
      result.targetedBig = await profiled('targeted', () => targetedRun(options.targeted))
    }
    if (want('eld')) {
      log(`${kind}: ${options.big} clients, broadcast`)
      result.broadcastBig = await broadcast(options.bigMessages, options.payload, options.big)
    }
    if (want('targeted')) {
      await fleet.shrinkTo(options.small)
      await sleep(500)
      log(`${kind}: ${options.small} clients, targeted`)
      result.targetedSmall = await profiled('targeted-small', () => targetedRun(options.targeted))
      // More rounds, alternating sizes; the lowest CPU per size is kept (the least disturbed
      // by whatever else the machine runs), every round goes to the JSON.
      result.targetedRounds = [
        { big: result.targetedBig?.cpuPerMessage, small: result.targetedSmall.cpuPerMessage },
      ]
      for (let round = 1; round < options.rounds; round++) {
        log(`${kind}: targeted, round ${round + 1} of ${options.rounds}`)
        await fleet.connectTo(server.clientUrl, options.big, SHARED_ID)
        await sleep(500)
        const big = await targetedRun(options.targeted)
        await fleet.shrinkTo(options.small)
        await sleep(500)
        const small = await targetedRun(options.targeted)
        result.targetedRounds.push({ big: big.cpuPerMessage, small: small.cpuPerMessage })
        if (result.targetedBig && big.cpuPerMessage < result.targetedBig.cpuPerMessage) {
          result.targetedBig = big
        }
        if (small.cpuPerMessage < result.targetedSmall.cpuPerMessage) result.targetedSmall = small
      }
    }

    if (want('broadcast')) {
      await fleet.shrinkTo(options.clients)
      await fleet.connectTo(server.clientUrl, options.clients, SHARED_ID)
      await sleep(1000)
      log(`${kind}: ${options.clients} clients, broadcast`)
      await broadcast(Math.min(20, options.messages), options.payload, options.clients) // warm-up
      result.broadcast = await profiled('broadcast', () =>
        broadcast(options.messages, options.payload, options.clients)
      )
    }

    if (want('slow')) {
      await fleet.shrinkTo(options.slowClients)
      await fleet.connectTo(server.clientUrl, options.slowClients, SHARED_ID)
      await sleep(500)
      const slowCount = Math.round((options.slowClients * options.slowPercent) / 100)
      log(`${kind}: ${options.slowClients} clients, ${slowCount} of them not reading`)
      result.normalPayload = await broadcast(
        options.slowMessages,
        options.slowPayload,
        options.slowClients
      )
      // The stalled clients are fresh connections: a socket that has been read fast has grown
      // kernel buffers (tcp_rmem max is 32 MiB here) that would hide the stall for a long time.
      await fleet.shrinkTo(options.slowClients - slowCount)
      await fleet.connectTo(server.clientUrl, options.slowClients, SHARED_ID)
      const paused = await fleet.pauseAdded()
      result.slow = await broadcast(
        options.slowMessages,
        options.slowPayload,
        options.slowClients - paused
      )
      // Let the stalled clients read again: they drain what the server kept and see its close frame.
      await fleet.resume()
      await sleep(3000)
      const after = await fleet.report()
      result.slowCloses = after.closes
      result.slowEnded = after.ended
      result.slowCount = paused
    }

    if (want('admin')) {
      await fleet.shrinkTo(0)
      await sleep(500)
      log(`${kind}: admin POSTs, no subscribers`)
      await measureAdmin(server, publisher, Math.min(1000, options.admin), runTimeout(0))
      result.admin = await profiled('admin', () =>
        measureAdmin(server, publisher, options.admin, runTimeout(options.admin * 20))
      )
    }
    return result
  } finally {
    await publisher.close().catch(() => {})
    await fleet.stop()
    cleanups.delete(stopFleet)
    await server.stop()
    cleanups.delete(server.stop)
  }
}

/**
 * The processes dimension: bench/processes.ts in a child (its own fleet and servers), sized
 * like this run; its table goes to stdout after this run's, its figures into this run's JSON.
 */
async function processesDimension(startedAt: Date): Promise<unknown> {
  const file = join(tmpdir(), `tidings-bench-processes-${process.pid}.json`)
  const minutesLeft = Math.max(1, Math.ceil((maxMs - (Date.now() - startedAt.getTime())) / 60_000))
  const args = [
    '--import',
    'tsx',
    fileURLToPath(new URL('./processes.ts', import.meta.url)),
    '--processes',
    '1,2,auto',
    '--clients',
    String(options.clients),
    '--shards',
    String(options.shards),
    '--max-minutes',
    String(minutesLeft),
    '--json',
    file,
    ...(quick ? ['--seconds', '3', '--saturated', '60', '--targeted', '1000'] : []),
  ]
  log('processes: 1, 2 and auto (bench/processes.ts)')
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] })
  cleanups.add(async () => {
    child.kill('SIGINT')
  })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`the processes dimension failed (exit ${code})`)
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } finally {
    rmSync(file, { force: true })
  }
}

async function main(): Promise<void> {
  const startedAt = new Date()
  const loadBefore = loadavg()
  log(
    `load average ${loadBefore.map((n) => n.toFixed(2)).join(' ')}; options ${JSON.stringify(options)}`
  )
  const results: ServerResult[] = []
  const serverParts = options.only.some((part) => part !== 'processes')
  for (const kind of serverParts ? options.servers : []) {
    results.push(await benchServer(kind))
  }
  const loadAfter = loadavg()
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    loadBefore,
    loadAfter,
  }
  const summary = serverParts ? printReport(results, options, machine) : undefined
  const processes =
    want('processes') && options.servers.includes('tidings')
      ? await processesDimension(startedAt)
      : undefined
  const root = fileURLToPath(new URL('..', import.meta.url))
  const dir = join(root, String(values.out))
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `fanout-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  const json = `${JSON.stringify({ startedAt, machine, options, results, summary, processes }, null, 2)}\n`
  writeFileSync(file, json)
  if (values.json) process.stdout.write(json)
  log(`wrote ${file}`)
}

main()
  .then(async () => {
    clearTimeout(hardStop)
    await cleanup()
    process.exit(0)
  })
  .catch(async (error: unknown) => {
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`
    )
    await cleanup()
    process.exit(1)
  })
