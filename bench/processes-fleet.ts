/**
 * The client fleet of bench/processes.ts: child processes (this file, run by startShard) that
 * open WebSocket clients from source addresses 127.0.0.2 and up, subscribe each to its ids,
 * time every frame against the `bt` wall clock its body carries, and churn on request; and
 * the parent's handle on them (Fleet).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { resolve as resolvePath } from 'node:path'
import WebSocket from 'ws'
import { Histogram, type SparseHistogram } from './histogram.ts'
import { clockMicros } from './publisher.ts'
import { RpcChild, serveRpc } from './rpc.ts'

// --- ids --------------------------------------------------------------------------------------

/** As long as a real PHID. */
const pad = (id: string) => id.padEnd(30, 'x')
export const SHARED_ID = pad('PHID-USER-all')
export const userId = (i: number) => pad(`PHID-USER-c${i}`)
export const groupId = (g: number) => pad(`PHID-PROJ-g${g}`)

export type Mode = 'broadcast' | 'centrifugo'

function idsOf(mode: Mode, i: number, groupSize: number): string[] {
  return mode === 'broadcast'
    ? [SHARED_ID, userId(i)]
    : [userId(i), groupId(Math.floor(i / groupSize))]
}

/** Client i's source address: 127.0.0.2 … 127.0.0.(1 + addresses), round-robin. */
const sourceAddress = (i: number, addresses: number) => `127.0.0.${2 + (i % addresses)}`

// --- the fleet child --------------------------------------------------------------------------

interface ConnectCommand {
  cmd: 'connect'
  url: string
  /** Global index of the first client, and how many. */
  from: number
  count: number
  mode: Mode
  groupSize: number
  addresses: number
  concurrency: number
}

type FleetCommand =
  | ConnectCommand
  | { cmd: 'reset' }
  | { cmd: 'count' }
  | { cmd: 'report'; perClient: boolean }
  | { cmd: 'churn'; perMinute: number; ms: number }

export interface FleetReport {
  received: number
  /** µs wall clock of the last frame. */
  lastAt: number
  histogram: SparseHistogram
  max: number
  open: number
  /** Connections that could not be opened (connect or churn), and the last error. */
  failed: number
  error: string | undefined
  /** Close codes of connections the fleet did not close itself. */
  closes: Record<string, number>
  churns: number
  cpuMicros: number
  /** Frames since the last reset, per client; and which clients churned since. */
  perClient?: number[]
  churned?: number[]
}

function fleetChild(): void {
  const maxMs = Number(process.env.TIDINGS_BENCH_MAX_MS ?? 3_600_000)
  setTimeout(() => process.exit(3), maxMs).unref()
  process.on('disconnect', () => process.exit(0))

  const MARKER = Buffer.from('"bt":')
  const PONG = Buffer.from('{"type":"pong"')
  const CONNECT_MS = 30_000
  const latency = new Histogram()
  let sockets: (WebSocket | undefined)[] = []
  let perClient = new Uint32Array(0)
  let churned = new Set<number>()
  let target: ConnectCommand | undefined
  const stats = {
    received: 0,
    lastAt: 0,
    failed: 0,
    churns: 0,
    error: undefined as string | undefined,
  }
  let closes: Record<string, number> = {}
  /** Clients being closed and reopened by churn just now (their closes are not counted). */
  const churning = new Set<number>()

  function onFrame(local: number, data: Buffer): void {
    const at = data.indexOf(MARKER)
    if (at < 0) return
    let bt = 0
    for (let i = at + MARKER.length; i < data.length; i++) {
      const digit = (data[i] as number) - 48
      if (digit < 0 || digit > 9) break
      bt = bt * 10 + digit
    }
    const now = clockMicros()
    latency.record(now - bt)
    stats.received++
    stats.lastAt = now
    perClient[local] = (perClient[local] as number) + 1
  }

  /** Opens client `local` (global index from + local), subscribes it, resolves on the pong. */
  function open(command: ConnectCommand, local: number): Promise<WebSocket> {
    const i = command.from + local
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${command.url}/`, {
        localAddress: sourceAddress(i, command.addresses),
        perMessageDeflate: false,
      })
      let subscribed = false
      const timer = setTimeout(() => {
        ws.terminate()
        reject(new Error('no pong in time'))
      }, CONNECT_MS)
      ws.once('open', () => {
        ws.send(
          JSON.stringify({ command: 'subscribe', data: idsOf(command.mode, i, command.groupSize) })
        )
        ws.send('{"command":"ping","data":null}')
      })
      ws.on('message', (data: Buffer) => {
        if (!subscribed && data.subarray(0, PONG.length).equals(PONG)) {
          subscribed = true
          clearTimeout(timer)
          resolve(ws)
          return
        }
        onFrame(local, data)
      })
      ws.on('error', (error) => {
        clearTimeout(timer)
        if (!subscribed) reject(error)
        else stats.error = error.message
      })
      ws.on('close', (code) => {
        if (sockets[local] === ws && !churning.has(local)) {
          closes[code] = (closes[code] ?? 0) + 1
          sockets[local] = undefined
        }
      })
    })
  }

  async function connect(command: ConnectCommand) {
    target = command
    sockets = new Array(command.count).fill(undefined)
    perClient = new Uint32Array(command.count)
    let next = 0
    const worker = async () => {
      while (next < command.count) {
        const local = next++
        try {
          sockets[local] = await open(command, local)
        } catch (error) {
          stats.failed++
          stats.error = (error as Error).message
        }
      }
    }
    await Promise.all(Array.from({ length: command.concurrency }, worker))
    return { open: sockets.filter(Boolean).length, failed: stats.failed, error: stats.error }
  }

  /** Closes and reopens `perMinute` % of the clients per minute, one at a time, for `ms`. */
  function churn(perMinute: number, ms: number): void {
    const command = target
    if (!command || perMinute <= 0) return
    const everyMs = 60_000 / ((perMinute / 100) * command.count)
    const until = Date.now() + ms
    const once = async () => {
      let local = Math.floor(Math.random() * command.count)
      for (let tries = 0; tries < 10 && (churning.has(local) || !sockets[local]); tries++) {
        local = Math.floor(Math.random() * command.count)
      }
      const old = sockets[local]
      if (!old || churning.has(local)) return
      churning.add(local)
      churned.add(local)
      stats.churns++
      old.close(1000)
      try {
        sockets[local] = await open(command, local)
      } catch (error) {
        sockets[local] = undefined
        stats.failed++
        stats.error = (error as Error).message
      } finally {
        churning.delete(local)
      }
    }
    const timer = setInterval(() => {
      if (Date.now() >= until) clearInterval(timer)
      else void once()
    }, everyMs)
  }

  function report(withClients: boolean): FleetReport {
    const cpu = process.cpuUsage()
    return {
      received: stats.received,
      lastAt: stats.lastAt,
      histogram: latency.toSparse(),
      max: latency.max,
      open: sockets.filter((ws) => ws?.readyState === WebSocket.OPEN).length,
      failed: stats.failed,
      error: stats.error,
      closes,
      churns: stats.churns,
      cpuMicros: cpu.user + cpu.system,
      ...(withClients ? { perClient: Array.from(perClient), churned: [...churned] } : {}),
    }
  }

  async function handle(command: FleetCommand): Promise<unknown> {
    switch (command.cmd) {
      case 'connect':
        return connect(command)
      case 'reset':
        latency.reset()
        stats.received = 0
        stats.lastAt = 0
        stats.churns = 0
        perClient.fill(0)
        churned = new Set()
        closes = {}
        return { ok: true }
      case 'count':
        return { received: stats.received }
      case 'report':
        return report(command.perClient)
      case 'churn':
        churn(command.perMinute, command.ms)
        return { ok: true }
    }
  }

  serveRpc(handle)
}

// --- the fleet, from the parent ---------------------------------------------------------------

type FleetShard = RpcChild<FleetCommand>

/** Every fleet child still running, for the parent to kill on the way out. */
export const shardProcesses = new Set<ChildProcess>()

function startShard(index: number, maxMs: number): FleetShard {
  const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, TIDINGS_BENCH_MAX_MS: String(maxMs) },
  })
  shardProcesses.add(child)
  child.once('exit', () => shardProcesses.delete(child))
  return new RpcChild<FleetCommand>(`fleet shard ${index}`, child, 300_000)
}

export class Fleet {
  /** [from, count) of the global client indexes, per shard. */
  readonly ranges: [number, number][] = []
  /** Source addresses 127.0.0.2 and up; 0: one per 10,000 clients. */
  addresses = 0

  private constructor(readonly shards: FleetShard[]) {}

  static async start(count: number, maxMs: number): Promise<Fleet> {
    const shards = Array.from({ length: count }, (_, i) => startShard(i, maxMs))
    const fleet = new Fleet(shards)
    await Promise.all(shards.map((shard) => shard.ready))
    return fleet
  }

  /** Connects `clients` clients, split evenly over the shards; resolves with how many opened. */
  async connect(url: string, clients: number, mode: Mode, groupSize: number): Promise<number> {
    const per = Math.ceil(clients / this.shards.length)
    const addresses = this.addresses || Math.max(1, Math.ceil(clients / 10_000))
    const results = await Promise.all(
      this.shards.map((shard, s) => {
        const from = s * per
        const count = Math.max(0, Math.min(per, clients - from))
        this.ranges[s] = [from, count]
        return shard.call<{ open: number; failed: number; error?: string }>({
          cmd: 'connect',
          url,
          from,
          count,
          mode,
          groupSize,
          addresses,
          concurrency: 64,
        })
      })
    )
    const failed = results.reduce((sum, r) => sum + r.failed, 0)
    if (failed > 0) {
      const error = results.find((r) => r.error)?.error
      console.error(`  ${failed} of ${clients} clients did not connect (${error})`)
    }
    return results.reduce((sum, r) => sum + r.open, 0)
  }

  all<T>(command: FleetCommand): Promise<T[]> {
    return Promise.all(this.shards.map((shard) => shard.call<T>(command)))
  }

  async received(): Promise<number> {
    const counts = await this.all<{ received: number }>({ cmd: 'count' })
    return counts.reduce((sum, c) => sum + c.received, 0)
  }

  dispose(): void {
    for (const shard of this.shards) shard.child.kill('SIGKILL')
  }
}

const isMain =
  process.argv[1] !== undefined && resolvePath(process.argv[1]) === import.meta.filename
if (isMain) fleetChild()
