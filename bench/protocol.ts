/** IPC messages between bench/run.ts and its children (fleet shards and the probe in servers). */
import type { SparseHistogram } from './histogram.ts'

export type FleetCommand =
  | { cmd: 'connect'; url: string; count: number; concurrency: number; shared: string }
  /** Keep the first `count` clients of this shard, close the rest. */
  | { cmd: 'keep'; count: number }
  /** Stop reading on the last `count` open clients (they become slow consumers). */
  | { cmd: 'pause'; count: number }
  | { cmd: 'resume' }
  | { cmd: 'reset' }
  | { cmd: 'report' }
  | { cmd: 'count' }

export interface FleetReport {
  shard: number
  /** Messages received by reading clients since the last reset. */
  received: number
  /** µs since the epoch of the first and last receipt. */
  firstAt: number
  lastAt: number
  /** Messages received by paused clients (after they resumed). */
  slowReceived: number
  /** Clients whose socket ended without a close frame. */
  ended: number
  /** Close frames received, by close code. */
  closes: Record<string, number>
  histogram: SparseHistogram
  max: number
  open: number
  cpu: NodeJS.CpuUsage
}

/** What bench/probe.mjs answers inside a server process. */
export interface ProbeSample {
  cpu: NodeJS.CpuUsage
  rss: number
  heapUsed: number
  /** Largest RSS seen by the sampler since the last reset, bytes. */
  rssMax: number
  /** Event-loop delay since the last reset, ms. */
  eldMax: number
  eldP99: number
  /** Set when the sample was taken after forcing garbage collection. */
  gc: boolean
}
