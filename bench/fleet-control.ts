/** Spawning the client-fleet shards (bench/fleet.ts) and talking to them over IPC. */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Histogram } from './histogram.ts'
import type { FleetCommand, FleetReport } from './protocol.ts'
import { RpcChild } from './rpc.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

type Shard = RpcChild<FleetCommand>

export interface FleetTotals {
  received: number
  slowReceived: number
  firstAt: number
  lastAt: number
  ended: number
  open: number
  closes: Record<string, number>
  latency: Histogram
  /** CPU µs the fleet used, summed over shards (cumulative since each shard started). */
  cpuMicros: number
}

export class Fleet {
  /** Open clients per shard, in the order they were connected. */
  readonly counts: number[]
  /** Clients each shard added in the last connectTo. */
  readonly added: number[]

  private constructor(readonly shards: Shard[]) {
    this.counts = shards.map(() => 0)
    this.added = shards.map(() => 0)
  }

  static async start(count: number, maxMs: number): Promise<Fleet> {
    const shards = Array.from({ length: count }, (_, index) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/fleet.ts')], {
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...process.env, BENCH_SHARD: String(index), BENCH_MAX_MS: String(maxMs) },
      })
      return new RpcChild<FleetCommand>(`fleet shard ${index}`, child)
    })
    await Promise.all(shards.map((shard) => shard.ready))
    return new Fleet(shards)
  }

  get total(): number {
    return this.counts.reduce((sum, n) => sum + n, 0)
  }

  /** Grows the fleet to `total` clients on `url`, spread evenly over the shards. */
  async connectTo(url: string, total: number, shared: string, concurrency = 64): Promise<void> {
    const per = this.split(total)
    const results = await Promise.all(
      this.shards.map((shard, i) => {
        const add = (per[i] as number) - (this.counts[i] as number)
        if (add <= 0) return { connected: this.counts[i] as number, failed: 0 }
        return shard.call<{ connected: number; failed: number; error?: string }>(
          { cmd: 'connect', url, count: add, concurrency, shared },
          300_000
        )
      })
    )
    results.forEach((result, i) => {
      const before = this.counts[i] as number
      this.counts[i] = Math.max(before, per[i] as number) - result.failed
      this.added[i] = (this.counts[i] as number) - before
    })
    const failed = results.reduce((sum, result) => sum + result.failed, 0)
    if (failed > 0) {
      const error = results.find((result) => 'error' in result && result.error)
      throw new Error(
        `${failed} clients failed to connect (${error && 'error' in error ? error.error : '?'})`
      )
    }
  }

  /** Shrinks the fleet to `total` clients (closing the most recently connected). */
  async shrinkTo(total: number): Promise<void> {
    const per = this.split(total)
    await Promise.all(
      this.shards.map((shard, i) => shard.call({ cmd: 'keep', count: per[i] as number }))
    )
    per.forEach((n, i) => {
      this.counts[i] = Math.min(this.counts[i] as number, n)
    })
  }

  /** Stops reading on the clients added by the last connectTo (fresh sockets); returns how many. */
  async pauseAdded(): Promise<number> {
    const results = await Promise.all(
      this.shards.map((shard, i) =>
        shard.call<{ paused: number }>({ cmd: 'pause', count: this.added[i] as number })
      )
    )
    return results.reduce((sum, result) => sum + result.paused, 0)
  }

  async resume(): Promise<void> {
    await Promise.all(this.shards.map((shard) => shard.call({ cmd: 'resume' })))
  }

  async reset(): Promise<void> {
    await Promise.all(this.shards.map((shard) => shard.call({ cmd: 'reset' })))
  }

  async report(): Promise<FleetTotals> {
    const reports = await Promise.all(
      this.shards.map((shard) => shard.call<FleetReport>({ cmd: 'report' }))
    )
    const latency = new Histogram()
    const totals: FleetTotals = {
      received: 0,
      slowReceived: 0,
      firstAt: Number.POSITIVE_INFINITY,
      lastAt: 0,
      ended: 0,
      open: 0,
      closes: {},
      latency,
      cpuMicros: 0,
    }
    for (const report of reports) {
      totals.received += report.received
      totals.slowReceived += report.slowReceived
      if (report.firstAt > 0) totals.firstAt = Math.min(totals.firstAt, report.firstAt)
      totals.lastAt = Math.max(totals.lastAt, report.lastAt)
      totals.ended += report.ended
      totals.open += report.open
      for (const [code, n] of Object.entries(report.closes)) {
        totals.closes[code] = (totals.closes[code] ?? 0) + n
      }
      latency.merge(report.histogram, report.max)
      totals.cpuMicros += report.cpu.user + report.cpu.system
    }
    return totals
  }

  /** Light-weight progress: messages received so far by reading clients. */
  async received(): Promise<number> {
    const counts = await Promise.all(
      this.shards.map((shard) => shard.call<{ received: number }>({ cmd: 'count' }))
    )
    return counts.reduce((sum, count) => sum + count.received, 0)
  }

  /** Which shard and client index client number `n` (0-based, over the fleet) is. */
  locate(n: number): { shard: number; index: number } {
    let rest = n
    for (let shard = 0; shard < this.counts.length; shard++) {
      const count = this.counts[shard] as number
      if (rest < count) return { shard, index: rest }
      rest -= count
    }
    throw new Error(`no client number ${n}`)
  }

  async stop(): Promise<void> {
    for (const shard of this.shards) {
      if (shard.child.exitCode === null && shard.child.signalCode === null)
        shard.child.kill('SIGKILL')
    }
    await Promise.race([
      Promise.all(this.shards.map((shard) => shard.exited)),
      new Promise((resolve) => setTimeout(resolve, 5000)),
    ])
  }

  private split(total: number): number[] {
    const n = this.shards.length
    return this.shards.map((_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0))
  }
}
