/**
 * Relay overhead: delivery latency on a single tidings node vs a 3-node full mesh, in one run.
 *
 *   npm run bench:cluster -- [--rate 200] [--seconds 20] [--clients 20] [--json FILE]
 *
 * Starts four `tidings run` processes on 127.0.0.1 (one alone, three in a full mesh that
 * lists every node, itself included), connects `--clients` WebSocket subscribers to each,
 * then for each setup POSTs Phorge-like messages (with uniqueID) to one node at `--rate` per
 * second for `--seconds`. Latency is POST sent → frame received, measured in this process
 * with one clock. Reports p50/p90/p99/max for: the single node, the mesh's origin node, and
 * the two mesh nodes that got the message by relay; plus POST answer times, lost and
 * duplicated frames. Prints a table and a JSON line. Every process is killed at the end.
 */
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import WebSocket from 'ws'
import { meshConfig, type NodePorts, nodePorts, TidingsProcess } from '../test/helpers/cluster.ts'

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '20' },
    clients: { type: 'string', default: '20' },
    json: { type: 'string' },
  },
})
const RATE = Number(values.rate)
const SECONDS = Number(values.seconds)
const CLIENTS = Number(values.clients)
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

/** Posts `RATE`/s for `SECONDS` to `target`; returns send times and POST answer times by key. */
async function drive(target: TidingsProcess, prefix: string) {
  const pool = new Pool(target.adminUrl, { connections: 8 })
  const sent = new Map<string, number>()
  const answers: number[] = []
  const total = Math.round(RATE * SECONDS)
  const start = performance.now()
  const inFlight: Promise<void>[] = []
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / RATE
    const wait = due - performance.now()
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    const key = `${prefix}-${i}`
    const body = JSON.stringify({
      key,
      type: 'notification',
      subscribers: [SUBSCRIBER, 'PHID-PROJ-other'],
      uniqueID: `${prefix}${i}`.padEnd(32, 'x'),
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
  await new Promise((resolve) => setTimeout(resolve, 1000)) // late frames
  await pool.close()
  return { sent, answers }
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
  const mesh = meshPorts.map((self) => new TidingsProcess(self, meshConfig(self, meshPorts)))
  const all = [solo, ...mesh]
  try {
    await Promise.all(all.map((node) => node.start()))
    const soloClients = await clientsOn(solo)
    const meshClients = await Promise.all(mesh.map((node) => clientsOn(node)))
    console.error(
      `tidings bench:cluster: ${RATE} msg/s for ${SECONDS} s per setup, ${CLIENTS} clients per node`
    )
    const single = await drive(solo, 'single')
    const relayed = await drive(mesh[0] as TidingsProcess, 'mesh')
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
    const report = {
      bench: 'cluster',
      rate: RATE,
      seconds: SECONDS,
      clientsPerNode: CLIENTS,
      node: process.version,
      rows,
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
