/**
 * One node served by several processes (`processes`: a primary that accepts every client
 * connection and hands it to a worker, and N workers holding the sockets) against one process.
 *
 *   npm run bench:processes -- [--processes 1,2,auto] [--clients 5000] [--paced 5,20]
 *                              [--seconds 10] [--saturated 200] [--targeted 4000]
 *                              [--targeted-rate 1000] [--shards 2] [--max-minutes 20]
 *                              [--json FILE]
 *   npm run bench:processes -- --centrifugo [--connections 50000] [--centrifugo-processes 1,3,4]
 *                              [--centrifugo-seconds 60] [--centrifugo-rate 25000]
 *                              [--group-size 10] [--churn 1] [--per-process 19000]
 *
 * For each `--processes` value it starts one fresh `tidings run` (heartbeat off, drain window
 * 0, no per-address handshake limit: every client comes from a few loopback addresses) and
 * connects `--clients` WebSocket clients, spread over `--shards` fleet child processes
 * (bench/processes-fleet.ts) and over source addresses 127.0.0.2…, each client
 * subscribed to one shared id and to its own id. Then:
 * - paced: one broadcast (to the shared id) POSTed at each `--paced` rate for `--seconds` s;
 * - saturated: `--saturated` broadcasts, 8 POSTs in flight, each sent once the last answered;
 * - targeted: `--targeted` POSTs, each to one random client's own id, at `--targeted-rate`/s.
 * Every body carries `bt`, the µs wall clock (performance.timeOrigin + now) just before it is
 * POSTed; a fleet child subtracts it from its own receipt clock, so latency is POST sent →
 * frame received. Measured per run, from the first POST to the last frame: deliveries/s,
 * p50/p99, lost (owed frames that never came), and the server's CPU (utime+stime from
 * /proc/<pid>/stat, summed over the primary and its worker children) per delivery, and its
 * total RSS (VmRSS, primary + workers) after the run. Only node processes count as the
 * server: tsx's esbuild service, a child of a primary run from the TypeScript sources, is
 * left out (the published package has none).
 *
 * `--centrifugo` runs (only) the anchor scenario, Centrifugo's million-connection test scaled
 * to one node: `--connections` clients, each subscribed to its own id and to a group id
 * shared by `--group-size` clients; messages alternate between one group id and
 * `--group-size` random personal ids (so each POST owes `--group-size` deliveries, half the
 * deliveries personal, half group), paced to `--centrifugo-rate` deliveries/s for
 * `--centrifugo-seconds` s, while `--churn` % of the connections per minute close and
 * reconnect. A process holds at most about 19,700 client sockets here (descriptor limit 20000,
 * less a reserve), so each `--centrifugo-processes` value P gets min(--connections,
 * max(1, workers) × --per-process) connections, and says so. Reported: p50/p99 latency (the
 * target is p99 ≤ 100 ms), CPU µs per delivery, RSS per connection (server RSS once connected
 * less before, over the connections), lost deliveries to clients that did not churn, and
 * deliveries missed by churning clients while they were away (not replayed: they do not ask).
 *
 * Prints markdown tables and a JSON line. Everything is killed at the end, on errors, on
 * SIGINT/SIGTERM and after `--max-minutes`.
 */
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { resolve as resolvePath } from 'node:path'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { meshConfig, nodePorts, TidingsProcess } from '../test/helpers/cluster.ts'
import { Histogram } from './histogram.ts'
import { CLK_TCK, processTree, treeCpuMicros, treeRssMb } from './proc.ts'
import {
  Fleet,
  type FleetReport,
  groupId,
  SHARED_ID,
  shardProcesses,
  userId,
} from './processes-fleet.ts'
import { clockMicros } from './publisher.ts'
import { post, round, runSummary, sleep } from './scale.ts'

// --- parent: arguments, cleanup ---------------------------------------------------------------

/** Server trees to kill on the way out (primary first). */
const servers = new Set<TidingsProcess>()

function killEverything(): void {
  for (const child of shardProcesses) child.kill('SIGKILL')
  for (const server of servers) {
    for (const pid of processTree(server.pid).reverse()) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
  }
}

function parse() {
  const { values } = parseArgs({
    options: {
      processes: { type: 'string', default: '1,2,auto' },
      clients: { type: 'string', default: '5000' },
      paced: { type: 'string', default: '5,20' },
      seconds: { type: 'string', default: '10' },
      saturated: { type: 'string', default: '200' },
      targeted: { type: 'string', default: '4000' },
      'targeted-rate': { type: 'string', default: '1000' },
      shards: { type: 'string', default: '2' },
      centrifugo: { type: 'boolean', default: false },
      connections: { type: 'string', default: '50000' },
      'centrifugo-processes': { type: 'string', default: '1,3,4' },
      'centrifugo-seconds': { type: 'string', default: '60' },
      'centrifugo-rate': { type: 'string', default: '25000' },
      'group-size': { type: 'string', default: '10' },
      churn: { type: 'string', default: '1' },
      'per-process': { type: 'string', default: '19000' },
      addresses: { type: 'string', default: '0' },
      'max-minutes': { type: 'string', default: '20' },
      json: { type: 'string' },
    },
  })
  const list = (text: string) => text.split(',').map((item) => item.trim())
  const processList = (text: string) =>
    list(text).map((p) => {
      if (p === 'auto') return 'auto' as const
      const n = Number(p)
      if (!Number.isInteger(n) || n < 1) throw new Error(`processes: 1 or more, or auto: "${p}"`)
      return n
    })
  return {
    processes: processList(values.processes),
    clients: Number(values.clients),
    paced: list(values.paced).map(Number),
    seconds: Number(values.seconds),
    saturated: Number(values.saturated),
    targeted: Number(values.targeted),
    targetedRate: Number(values['targeted-rate']),
    shards: Number(values.shards),
    centrifugo: values.centrifugo,
    connections: Number(values.connections),
    centrifugoProcesses: processList(values['centrifugo-processes']),
    centrifugoSeconds: Number(values['centrifugo-seconds']),
    centrifugoRate: Number(values['centrifugo-rate']),
    groupSize: Number(values['group-size']),
    churn: Number(values.churn),
    perProcess: Number(values['per-process']),
    addresses: Number(values.addresses),
    maxMinutes: Number(values['max-minutes']),
    json: values.json,
  }
}

type Options = ReturnType<typeof parse>
type Processes = number | 'auto'

// --- parent: the server -----------------------------------------------------------------------

interface Server {
  node: TidingsProcess
  processes: Processes
  /** Worker processes (0: the primary holds the sockets itself). */
  workers: number
  pids(): number[]
  pool: Pool
  dispose(): Promise<void>
}

async function startServer(processes: Processes): Promise<Server> {
  const [ports] = await nodePorts(1)
  if (!ports) throw new Error('no ports')
  const node = new TidingsProcess(
    ports,
    meshConfig(ports, [], {
      processes,
      websocket: { heartbeat: 0 },
      drain: { window: 0 },
      limits: { handshakesPerIp: 0 },
    })
  )
  servers.add(node)
  const pool = new Pool(node.adminUrl, { connections: 64, pipelining: 1 })
  const dispose = async () => {
    const tree = processTree(node.pid)
    await pool.destroy()
    await node.dispose()
    for (const pid of tree) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    servers.delete(node)
  }
  try {
    await node.start(30_000)
    let workers = 0
    if (processes !== 1) {
      const deadline = Date.now() + 30_000
      for (;;) {
        const line = node.output.find((l) => /Serving client sockets from (\d+) worker/.test(l))
        if (line) {
          workers = Number(/from (\d+) worker/.exec(line)?.[1])
          break
        }
        if (Date.now() > deadline) {
          if (processes === 'auto') break // one core: no workers
          throw new Error(`no workers: ${node.output.slice(-5).join('\n')}`)
        }
        await sleep(50)
      }
    }
    return { node, processes, workers, pids: () => processTree(node.pid), pool, dispose }
  } catch (error) {
    await dispose()
    throw error
  }
}

// --- parent: posting --------------------------------------------------------------------------

const KEY_EPOCH = Math.floor(Date.now() / 1000)
let keys = 0
const nextKey = () => `${KEY_EPOCH}${String(keys++).padStart(9, '0')}`

/** A Phorge-like body (with a uniqueID, as Phorge sends) stamped with `bt` just now. */
function body(subscribers: string[]): string {
  return `{"type":"notification","key":"${nextKey()}","uniqueID":"${randomUUID().replaceAll('-', '')}","subscribers":${JSON.stringify(subscribers)},"bt":${clockMicros()}}`
}

interface Sending {
  ok: number
  failed: number
  /** µs clock of the first POST. */
  firstAt: number
  sendMs: number
}

/**
 * POSTs `total` messages, message m due at m / rate s (a 10 ms tick, late ticks caught up,
 * at most `inflight` in flight), or with rate 0 as fast as `inflight` POSTs are answered.
 * `targets(m)` names message m's subscribers; `answered(m, ok)` hears each answer.
 */
async function send(
  pool: Pool,
  total: number,
  rate: number,
  inflight: number,
  targets: (m: number) => string[],
  answered: (m: number, ok: boolean) => void = () => {}
): Promise<Sending> {
  const result: Sending = { ok: 0, failed: 0, firstAt: clockMicros(), sendMs: 0 }
  const pending = new Set<Promise<void>>()
  const start = performance.now()
  const one = (m: number) => {
    const request = post(pool, body(targets(m))).then((ok) => {
      if (ok) result.ok++
      else result.failed++
      answered(m, ok)
      pending.delete(request)
    })
    pending.add(request)
  }
  let m = 0
  if (rate <= 0) {
    while (m < total) {
      while (pending.size >= inflight) await Promise.race(pending)
      one(m++)
    }
  } else {
    for (let tick = 0; m < total; tick++) {
      const due = Math.min(total, Math.floor(((tick * 10) / 1000) * rate) + 1)
      for (; m < due; m++) {
        while (pending.size >= inflight) await Promise.race(pending)
        one(m)
      }
      const wait = start + (tick + 1) * 10 - performance.now()
      if (wait > 0) await sleep(wait)
    }
  }
  result.sendMs = performance.now() - start
  await Promise.all(pending)
  return result
}

/**
 * Waits until the fleet has `expected` frames, or nothing came for `quietMs` (they are lost),
 * or `maxMs` passed. Resolves with the server's CPU µs at that moment.
 */
async function owed(
  fleet: Fleet,
  server: Server,
  expected: number,
  quietMs = 3000,
  maxMs = 60_000
) {
  const start = Date.now()
  let last = -1
  let lastChange = Date.now()
  for (;;) {
    const received = await fleet.received()
    if (received >= expected) break
    if (received !== last) {
      last = received
      lastChange = Date.now()
    } else if (Date.now() - lastChange > quietMs) break
    if (Date.now() - start > maxMs) break
    await sleep(25)
  }
  return treeCpuMicros(server.pids())
}

// --- parent: scenarios a–c --------------------------------------------------------------------

interface Row {
  processes: Processes
  workers: number
  scenario: 'paced' | 'saturated' | 'targeted'
  /** Messages/s asked for (paced, targeted); 0: as fast as answered. */
  rate: number
  messages: number
  failedPosts: number
  sentRate: number
  clients: number
  expected: number
  deliveries: number
  deliveriesPerSecond: number
  windowSeconds: number
  p50: number
  p99: number
  max: number
  lost: number
  duplicates: number
  cpuMicrosPerDelivery: number
  cpuMicrosPerMessage: number
  fleetCpuMicrosPerDelivery: number
  rssMb: number
  load1: number
}

async function merged(fleet: Fleet, perClient = false) {
  const reports = await fleet.all<FleetReport>({ cmd: 'report', perClient })
  const histogram = new Histogram()
  for (const report of reports) histogram.merge(report.histogram, report.max)
  return {
    reports,
    histogram,
    received: reports.reduce((sum, r) => sum + r.received, 0),
    lastAt: Math.max(...reports.map((r) => r.lastAt)),
    open: reports.reduce((sum, r) => sum + r.open, 0),
    fleetCpu: reports.reduce((sum, r) => sum + r.cpuMicros, 0),
    churns: reports.reduce((sum, r) => sum + r.churns, 0),
    failed: reports.reduce((sum, r) => sum + r.failed, 0),
    closes: reports.reduce<Record<string, number>>((all, r) => {
      for (const [code, n] of Object.entries(r.closes)) all[code] = (all[code] ?? 0) + n
      return all
    }, {}),
  }
}

const ms = (micros: number) => round(micros / 1000, 2)

async function scenario(
  server: Server,
  fleet: Fleet,
  name: Row['scenario'],
  rate: number,
  run: () => Promise<Sending>,
  perMessage: (ok: number, clients: number) => number
): Promise<Row> {
  await fleet.all({ cmd: 'reset' })
  const { open: clients, fleetCpu: fleetBefore } = await merged(fleet)
  await sleep(500)
  const before = treeCpuMicros(server.pids())
  const sending = await run()
  const expected = perMessage(sending.ok, clients)
  const after = await owed(fleet, server, expected)
  const result = await merged(fleet)
  const deliveries = result.received
  const windowSeconds = Math.max(1e-6, (result.lastAt - sending.firstAt) / 1e6)
  const messages = sending.ok + sending.failed
  const row: Row = {
    processes: server.processes,
    workers: server.workers,
    scenario: name,
    rate,
    messages,
    failedPosts: sending.failed,
    sentRate: round(messages / (sending.sendMs / 1000), 1),
    clients,
    expected,
    deliveries,
    // A paced run lasts messages / rate s however quick the last frame: n messages are n
    // intervals, not n - 1.
    deliveriesPerSecond: round(
      deliveries / Math.max(windowSeconds, rate > 0 ? messages / rate : 0),
      0
    ),
    windowSeconds: round(windowSeconds, 2),
    p50: ms(result.histogram.percentile(50)),
    p99: ms(result.histogram.percentile(99)),
    max: ms(result.histogram.max),
    lost: Math.max(0, expected - deliveries),
    duplicates: Math.max(0, deliveries - expected),
    cpuMicrosPerDelivery: round((after - before) / Math.max(1, deliveries), 2),
    cpuMicrosPerMessage: round((after - before) / Math.max(1, sending.ok), 1),
    fleetCpuMicrosPerDelivery: round((result.fleetCpu - fleetBefore) / Math.max(1, deliveries), 2),
    rssMb: round(treeRssMb(server.pids()), 1),
    load1: round(loadavg()[0] as number),
  }
  console.error(
    `  ${name} ${rate > 0 ? `${rate}/s` : ''} ×${messages}: ${row.deliveriesPerSecond} deliveries/s, p50 ${row.p50} ms, p99 ${row.p99} ms, lost ${row.lost}, ${row.cpuMicrosPerDelivery} µs/delivery, RSS ${row.rssMb} MB, load ${row.load1}`
  )
  return row
}

async function runProcesses(options: Options, processes: Processes, maxMs: number): Promise<Row[]> {
  console.error(`[${new Date().toISOString()}] processes ${processes}: starting`)
  const server = await startServer(processes)
  let fleet: Fleet | undefined
  try {
    fleet = await Fleet.start(options.shards, maxMs)
    fleet.addresses = options.addresses
    const open = await fleet.connect(server.node.clientUrl, options.clients, 'broadcast', 1)
    console.error(`  ${open} clients connected, ${server.workers} workers`)
    const rows: Row[] = []
    const broadcast = (ok: number, clients: number) => ok * clients
    for (const rate of options.paced) {
      rows.push(
        await scenario(
          server,
          fleet,
          'paced',
          rate,
          () => send(server.pool, Math.round(rate * options.seconds), rate, 64, () => [SHARED_ID]),
          broadcast
        )
      )
    }
    rows.push(
      await scenario(
        server,
        fleet,
        'saturated',
        0,
        () => send(server.pool, options.saturated, 0, 8, () => [SHARED_ID]),
        broadcast
      )
    )
    rows.push(
      await scenario(
        server,
        fleet,
        'targeted',
        options.targetedRate,
        () =>
          send(server.pool, options.targeted, options.targetedRate, 64, () => [
            userId(Math.floor(Math.random() * options.clients)),
          ]),
        (ok) => ok
      )
    )
    return rows
  } finally {
    fleet?.dispose()
    await server.dispose()
  }
}

function table(rows: Row[]): string {
  const lines = [
    '| processes | scenario | rate or count | deliveries/s | p50 ms | p99 ms | lost | CPU µs/delivery (server) | RSS MB (server total) |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|',
  ]
  for (const r of rows) {
    const processes = r.processes === 'auto' ? `auto (${r.workers})` : String(r.processes)
    const what =
      r.scenario === 'paced'
        ? `${r.rate} msg/s × ${r.messages}`
        : r.scenario === 'saturated'
          ? `${r.messages} msgs`
          : `${r.messages} msgs @ ${r.rate}/s`
    lines.push(
      `| ${processes} | ${r.scenario} | ${what} | ${r.deliveriesPerSecond} | ${r.p50} | ${r.p99} | ${r.lost} | ${r.cpuMicrosPerDelivery} | ${r.rssMb} |`
    )
  }
  return lines.join('\n')
}

// --- parent: the Centrifugo scenario ----------------------------------------------------------

interface CentrifugoRow {
  processes: Processes
  workers: number
  connections: number
  connected: number
  note: string | undefined
  seconds: number
  targetDeliveriesPerSecond: number
  messages: number
  failedPosts: number
  sentRate: number
  expected: number
  deliveries: number
  deliveriesPerSecond: number
  p50: number
  p99: number
  max: number
  p99TargetMs: number
  p99Met: boolean
  lost: number
  churns: number
  churnMissed: number
  duplicates: number
  churnFailures: number
  closes: Record<string, number>
  cpuMicrosPerDelivery: number
  serverCores: number
  fleetCpuMicrosPerDelivery: number
  rssMbIdle: number
  rssMbConnected: number
  rssMbAfter: number
  rssKbPerConnection: number
  connectSeconds: number
  load1Before: number
  load1After: number
}

async function runCentrifugo(
  options: Options,
  processes: Processes,
  maxMs: number
): Promise<CentrifugoRow> {
  console.error(`[${new Date().toISOString()}] centrifugo, processes ${processes}: starting`)
  const server = await startServer(processes)
  let fleet: Fleet | undefined
  try {
    const holders = Math.max(1, server.workers)
    const connections = Math.min(options.connections, holders * options.perProcess)
    const note =
      connections < options.connections
        ? `${connections} connections, not ${options.connections}: ${holders} process(es) holding sockets × ${options.perProcess} (descriptor limit 20000)`
        : undefined
    if (note) console.error(`  ${note}`)
    const size = options.groupSize
    const groups = Math.floor(connections / size)
    fleet = await Fleet.start(Math.max(1, Math.ceil(connections / 17_000)), maxMs)
    fleet.addresses = options.addresses
    await sleep(1000)
    const rssMbIdle = treeRssMb(server.pids())
    const connectStart = performance.now()
    const connected = await fleet.connect(server.node.clientUrl, connections, 'centrifugo', size)
    const connectSeconds = (performance.now() - connectStart) / 1000
    console.error(`  ${connected} connected in ${round(connectSeconds, 1)} s`)
    await sleep(3000)
    const rssMbConnected = treeRssMb(server.pids())
    await fleet.all({ cmd: 'reset' })
    const { fleetCpu: fleetBefore } = await merged(fleet)
    const load1Before = round(loadavg()[0] as number)

    const expectedBy = new Uint32Array(connections)
    const posts = Math.round((options.centrifugoRate / size) * options.centrifugoSeconds)
    const postRate = options.centrifugoRate / size
    /** Message m: even, one group id; odd, `size` distinct random personal ids. */
    const targets = new Map<number, number[]>()
    const pick = (m: number): string[] => {
      if (m % 2 === 0) {
        const g = Math.floor(Math.random() * groups)
        targets.set(m, [-1 - g])
        return [groupId(g)]
      }
      const chosen = new Set<number>()
      while (chosen.size < size) chosen.add(Math.floor(Math.random() * connections))
      targets.set(m, [...chosen])
      return [...chosen].map(userId)
    }
    const answered = (m: number, ok: boolean) => {
      const list = targets.get(m) ?? []
      targets.delete(m)
      if (!ok) return
      for (const t of list) {
        if (t >= 0) expectedBy[t] = (expectedBy[t] as number) + 1
        else
          for (let i = (-1 - t) * size; i < -t * size; i++)
            expectedBy[i] = (expectedBy[i] as number) + 1
      }
    }
    await fleet.all({
      cmd: 'churn',
      perMinute: options.churn,
      ms: options.centrifugoSeconds * 1000,
    })
    const before = treeCpuMicros(server.pids())
    const sending = await send(server.pool, posts, postRate, 128, pick, answered)
    const expected = expectedBy.reduce((sum, n) => sum + n, 0)
    // Churning clients miss what came while they were away: do not wait for those.
    const after = await owed(fleet, server, expected, 3000)
    const result = await merged(fleet, true)
    const windowSeconds = Math.max(1e-6, (result.lastAt - sending.firstAt) / 1e6)
    let lost = 0
    let churnMissed = 0
    let duplicates = 0
    fleet.ranges.forEach(([from], s) => {
      const report = result.reports[s] as FleetReport
      const churned = new Set(report.churned ?? [])
      ;(report.perClient ?? []).forEach((got, local) => {
        const owedFrames = expectedBy[from + local] as number
        if (got > owedFrames) duplicates += got - owedFrames
        else if (churned.has(local)) churnMissed += owedFrames - got
        else lost += owedFrames - got
      })
    })
    const rssMbAfter = treeRssMb(server.pids())
    const p99 = ms(result.histogram.percentile(99))
    const messages = sending.ok + sending.failed
    const row: CentrifugoRow = {
      processes,
      workers: server.workers,
      connections,
      connected,
      note,
      seconds: options.centrifugoSeconds,
      targetDeliveriesPerSecond: options.centrifugoRate,
      messages,
      failedPosts: sending.failed,
      sentRate: round(messages / (sending.sendMs / 1000), 1),
      expected,
      deliveries: result.received,
      deliveriesPerSecond: round(result.received / windowSeconds, 0),
      p50: ms(result.histogram.percentile(50)),
      p99,
      max: ms(result.histogram.max),
      p99TargetMs: 100,
      p99Met: p99 <= 100,
      lost,
      churns: result.churns,
      churnMissed,
      duplicates,
      churnFailures: result.failed,
      closes: result.closes,
      cpuMicrosPerDelivery: round((after - before) / Math.max(1, result.received), 2),
      serverCores: round((after - before) / 1e6 / windowSeconds, 2),
      fleetCpuMicrosPerDelivery: round(
        (result.fleetCpu - fleetBefore) / Math.max(1, result.received),
        2
      ),
      rssMbIdle: round(rssMbIdle, 1),
      rssMbConnected: round(rssMbConnected, 1),
      rssMbAfter: round(rssMbAfter, 1),
      rssKbPerConnection: round(((rssMbConnected - rssMbIdle) * 1024) / Math.max(1, connected), 2),
      connectSeconds: round(connectSeconds, 1),
      load1Before,
      load1After: round(loadavg()[0] as number),
    }
    console.error(
      `  ${row.deliveriesPerSecond} deliveries/s (sent ${row.sentRate} POSTs/s), p50 ${row.p50} ms, p99 ${row.p99} ms (target 100: ${row.p99Met ? 'met' : 'missed'}), lost ${lost}, churn-missed ${churnMissed}, ${row.cpuMicrosPerDelivery} µs/delivery, ${row.rssKbPerConnection} KB/connection`
    )
    return row
  } finally {
    fleet?.dispose()
    await server.dispose()
  }
}

function centrifugoTable(rows: CentrifugoRow[]): string {
  const lines = [
    '| processes | connections | deliveries/s | p50 ms | p99 ms | p99 ≤ 100 ms | max ms | lost | churns (missed while away) | CPU µs/delivery (server) | server cores | RSS MB connected (server total) | RSS KB/connection |',
    '|---|--:|--:|--:|--:|:-:|--:|--:|--:|--:|--:|--:|--:|',
  ]
  for (const r of rows) {
    const processes = r.processes === 'auto' ? `auto (${r.workers})` : String(r.processes)
    lines.push(
      `| ${processes} | ${r.connected}${r.note ? '*' : ''} | ${r.deliveriesPerSecond} | ${r.p50} | ${r.p99} | ${r.p99Met ? 'yes' : 'no'} | ${r.max} | ${r.lost} | ${r.churns} (${r.churnMissed}) | ${r.cpuMicrosPerDelivery} | ${r.serverCores} | ${r.rssMbConnected} | ${r.rssKbPerConnection} |`
    )
  }
  return lines.join('\n')
}

// --- parent: main -----------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parse()
  const started = performance.now()
  const maxMs = options.maxMinutes * 60_000
  const bound = setTimeout(() => {
    console.error(`--max-minutes ${options.maxMinutes} reached: stopping every process`)
    killEverything()
    process.exit(2)
  }, maxMs)
  bound.unref()
  const loadBefore = loadavg()
  const rows: Row[] = []
  const centrifugo: CentrifugoRow[] = []
  const failures: { processes: Processes; error: string }[] = []
  if (options.centrifugo) {
    console.error(
      `tidings bench:processes --centrifugo: ${options.connections} connections, processes ${options.centrifugoProcesses.join(',')}, ${options.centrifugoRate} deliveries/s for ${options.centrifugoSeconds} s, groups of ${options.groupSize}, churn ${options.churn} %/min; load ${loadBefore.map((l) => round(l)).join(' ')}`
    )
  } else {
    console.error(
      `tidings bench:processes: processes ${options.processes.join(',')}, ${options.clients} clients over ${options.shards} shards, paced ${options.paced.join(',')} msg/s for ${options.seconds} s, saturated ${options.saturated}, targeted ${options.targeted} @ ${options.targetedRate}/s; load ${loadBefore.map((l) => round(l)).join(' ')}`
    )
  }
  try {
    for (const processes of options.centrifugo ? options.centrifugoProcesses : options.processes) {
      try {
        if (options.centrifugo) centrifugo.push(await runCentrifugo(options, processes, maxMs))
        else rows.push(...(await runProcesses(options, processes, maxMs)))
      } catch (error) {
        console.error(`  processes ${processes} failed: ${(error as Error).stack ?? error}`)
        failures.push({ processes, error: String(error) })
      }
    }
  } finally {
    killEverything()
  }
  const summary = runSummary(loadBefore, started)
  if (options.centrifugo) {
    console.log(centrifugoTable(centrifugo))
    for (const r of centrifugo) if (r.note) console.log(`\n* processes ${r.processes}: ${r.note}`)
  } else console.log(table(rows))
  for (const failure of failures)
    console.log(`\nprocesses ${failure.processes} failed: ${failure.error}`)
  const report = {
    bench: options.centrifugo ? 'processes-centrifugo' : 'processes',
    ...summary,
    clkTck: CLK_TCK,
    params: options,
    ...(options.centrifugo ? { centrifugo } : { rows }),
    failures,
  }
  console.log(`\n${JSON.stringify(report)}`)
  if (options.json) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`)
  process.exit(failures.length > 0 ? 1 : 0)
}

const isMain =
  process.argv[1] !== undefined && resolvePath(process.argv[1]) === import.meta.filename

if (isMain) {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, async () => {
      console.error(`${signal}: stopping every process`)
      killEverything()
      // dispose() also removes each server's temp dir (bounded: never hang on the way out).
      await Promise.race([Promise.all([...servers].map((node) => node.dispose())), sleep(3000)])
      process.exit(130)
    })
  }
  process.once('exit', killEverything)
  await main()
}
