/**
 * Relay overhead: delivery latency on a single tidings node vs a 3-node full mesh, in one run.
 *
 *   npm run bench:cluster -- [--rate 100] [--seconds 20] [--rounds 4] [--warmup 3] [--clients 2]
 *                            [--window N] [--json FILE]
 *
 * Starts four `tidings run` processes on 127.0.0.1 (one alone, three in a full mesh that
 * lists every node, itself included), connects `--clients` WebSocket subscribers to each,
 * then POSTs Phorge-like messages (with uniqueID) to one node of each setup at `--rate` per
 * second for `--seconds` per setup, after `--warmup` unmeasured seconds per setup, alternating
 * between the setups in `--rounds` slices so a noisy machine weighs on both alike. Latency is
 * POST sent → frame received, measured in this process with one clock. Reports p50/p90/p99/max for: the single node, the mesh's origin node, and
 * the two mesh nodes that got the message by relay; plus POST answer times, lost and
 * duplicated frames. Prints a table and a JSON line. Every process is killed at the end.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
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

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '3' },
    window: { type: 'string' },
    clients: { type: 'string', default: '2' },
    json: { type: 'string' },
  },
})
const RATE = Number(values.rate)
const SECONDS = Number(values.seconds)
const CLIENTS = Number(values.clients)
const ROUNDS = Math.max(1, Number(values.rounds))
const WARMUP = Number(values.warmup)
const SUBSCRIBER = 'PHID-USER-bench'

interface Series {
  label: string
  samples: number[]
  lost: number
  duplicates: number
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

function summary(series: Series) {
  const sorted = [...series.samples].sort((a, b) => a - b)
  const round = (ms: number) => Math.round(ms * 1000) / 1000
  return {
    label: series.label,
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? Number.NaN),
    lost: series.lost,
    duplicates: series.duplicates,
  }
}

/** `CLIENTS` subscribed sockets on a node; `arrivals` maps key → arrival times (ms). */
async function clientsOn(node: TidingsProcess) {
  const arrivals = new Map<string, number[]>()
  const sockets: WebSocket[] = []
  for (let i = 0; i < CLIENTS; i++) {
    const ws = new WebSocket(`${node.clientUrl}/`)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    ws.on('message', (data) => {
      const at = performance.now()
      const frame = JSON.parse(data.toString()) as { key?: string; type?: string }
      if (frame.type === 'pong' || frame.key === undefined) return
      const list = arrivals.get(frame.key)
      if (list) list.push(at)
      else arrivals.set(frame.key, [at])
    })
    ws.send(JSON.stringify({ command: 'subscribe', data: [SUBSCRIBER] }))
    sockets.push(ws)
  }
  // A ping answered means the subscribe before it was handled.
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          const onMessage = (data: WebSocket.RawData) => {
            if (JSON.parse(data.toString()).type === 'pong') {
              ws.off('message', onMessage)
              resolve()
            }
          }
          ws.on('message', onMessage)
          ws.send(JSON.stringify({ command: 'ping', data: null }))
        })
    )
  )
  return {
    arrivals,
    close: () => {
      for (const ws of sockets) ws.terminate()
    },
  }
}

/** User + system CPU milliseconds a process has used so far (Linux /proc; 0 elsewhere). */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return 0
  }
}

interface Driven {
  sent: Map<string, number>
  answers: number[]
}

/** Posts `RATE`/s for `seconds` to `target`, recording send times and POST answer times. */
async function drive(target: TidingsProcess, prefix: string, seconds: number, into: Driven) {
  const pool = new Pool(target.adminUrl, { connections: 8 })
  const { sent, answers } = into
  const total = Math.round(RATE * seconds)
  const start = performance.now()
  const inFlight: Promise<void>[] = []
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / RATE
    const wait = due - performance.now()
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    const key = `${prefix}-${sent.size}`
    const body = JSON.stringify({
      key,
      type: 'notification',
      subscribers: [SUBSCRIBER, 'PHID-PROJ-other'],
      uniqueID: key.padEnd(32, 'x'),
    })
    const at = performance.now()
    sent.set(key, at)
    inFlight.push(
      pool
        .request({
          method: 'POST',
          path: '/',
          headers: { 'content-type': 'application/json' },
          body,
        })
        .then(async (response) => {
          await response.body.text()
          answers.push(performance.now() - at)
        })
    )
    if (inFlight.length > 256) await Promise.all(inFlight.splice(0, 128))
  }
  await Promise.all(inFlight)
  await new Promise((resolve) => setTimeout(resolve, 500)) // late frames
  await pool.close()
}

function collect(
  label: string,
  sent: Map<string, number>,
  arrivals: Map<string, number[]>[]
): Series {
  const series: Series = { label, samples: [], lost: 0, duplicates: 0 }
  for (const [key, at] of sent) {
    for (const perNode of arrivals) {
      const times = perNode.get(key) ?? []
      if (times.length < CLIENTS) series.lost += CLIENTS - times.length
      if (times.length > CLIENTS) series.duplicates += times.length - CLIENTS
      for (const time of times) series.samples.push(time - at)
    }
  }
  return series
}

async function main(): Promise<void> {
  const ports = await nodePorts(4)
  const solo = new TidingsProcess(ports[0] as NodePorts, meshConfig(ports[0] as NodePorts, []))
  const meshPorts = ports.slice(1)
  const relay = values.window ? { relay: { window: Number(values.window) } } : {}
  const mesh = meshPorts.map((self) => new TidingsProcess(self, meshConfig(self, meshPorts, relay)))
  const all = [solo, ...mesh]
  try {
    await Promise.all(all.map((node) => node.start()))
    const soloClients = await clientsOn(solo)
    const meshClients = await Promise.all(mesh.map((node) => clientsOn(node)))
    console.error(
      `tidings bench:cluster: ${RATE} msg/s for ${SECONDS} s per setup in ${ROUNDS} rounds, ${CLIENTS} clients per node`
    )
    const single: Driven = { sent: new Map(), answers: [] }
    const relayed: Driven = { sent: new Map(), answers: [] }
    // Unmeasured warm-up of both setups (JIT, connection pools), like the rounds that follow.
    const discard = (): Driven => ({ sent: new Map(), answers: [] })
    await drive(solo, 'warm-single', WARMUP, discard())
    await drive(mesh[0] as TidingsProcess, 'warm-mesh', WARMUP, discard())
    const loadBefore = loadavg()[0]
    // Idle CPU of each process (timers, housekeeping), to subtract from the loaded figures.
    const idleStart = all.map((node) => cpuMs(node.pid))
    const idleFrom = performance.now()
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const idleRate = all.map(
      (node, i) => (cpuMs(node.pid) - (idleStart[i] as number)) / (performance.now() - idleFrom)
    )
    const cpu = { single: 0, origin: 0, relayed: 0 }
    for (let round = 0; round < ROUNDS; round++) {
      let from = performance.now()
      const before = cpuMs(solo.pid)
      await drive(solo, 'single', SECONDS / ROUNDS, single)
      cpu.single += cpuMs(solo.pid) - before - (idleRate[0] as number) * (performance.now() - from)
      from = performance.now()
      const meshBefore = mesh.map((node) => cpuMs(node.pid))
      await drive(mesh[0] as TidingsProcess, 'mesh', SECONDS / ROUNDS, relayed)
      const elapsed = performance.now() - from
      mesh.forEach((node, i) => {
        const used =
          cpuMs(node.pid) - (meshBefore[i] as number) - (idleRate[i + 1] as number) * elapsed
        if (i === 0) cpu.origin += used
        else cpu.relayed += used / (mesh.length - 1)
      })
    }
    // CPU per message, in µs, of each process, idle CPU subtracted (/proc ticks are 10 ms).
    const perMessage = (ms: number) => Math.round((ms * 1000) / (RATE * SECONDS))
    const cpuPerMessage = {
      single: perMessage(cpu.single),
      meshOrigin: perMessage(cpu.origin),
      meshRelayedNode: perMessage(cpu.relayed),
    }
    const loadAfter = loadavg()[0]
    const rows = [
      summary(collect('single node', single.sent, [soloClients.arrivals])),
      summary(collect('mesh: origin node', relayed.sent, [meshClients[0]?.arrivals ?? new Map()])),
      summary(
        collect(
          'mesh: relayed nodes',
          relayed.sent,
          meshClients.slice(1).map((c) => c.arrivals)
        )
      ),
      summary({ label: 'POST answer, single', samples: single.answers, lost: 0, duplicates: 0 }),
      summary({ label: 'POST answer, mesh', samples: relayed.answers, lost: 0, duplicates: 0 }),
    ]
    console.log('\nlatency in ms (POST sent → frame received; last two rows: POST answered)')
    console.table(rows)
    console.log('CPU µs per message (user+sys of each node process, idle subtracted):')
    console.table([cpuPerMessage])
    // Relay health after the run: failures here would explain a latency tail.
    const peers = (await Promise.all(mesh.map((node) => peersOf(node.adminUrl))))
      .flat()
      .filter((peer) => peer.state !== 'self')
      .map(({ peer, state, relayed, failed, dropped, lastError }) => ({
        peer,
        state,
        relayed,
        failed,
        dropped,
        lastError,
      }))
    console.table(peers)
    const report = {
      bench: 'cluster',
      rate: RATE,
      seconds: SECONDS,
      rounds: ROUNDS,
      warmupSeconds: WARMUP,
      clientsPerNode: CLIENTS,
      node: process.version,
      cpus: cpus().length,
      loadAverage: { before: loadBefore, after: loadAfter },
      rows,
      cpuPerMessageMicros: cpuPerMessage,
      peers,
      overheadP50:
        rows[2] && rows[0] ? Math.round((rows[2].p50 - rows[0].p50) * 1000) / 1000 : null,
      overheadP99:
        rows[2] && rows[0] ? Math.round((rows[2].p99 - rows[0].p99) * 1000) / 1000 : null,
    }
    console.log(JSON.stringify(report))
    if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`)
    soloClients.close()
    for (const clients of meshClients) clients.close()
  } finally {
    await Promise.all(all.map((node) => node.dispose()))
  }
}

await main()
