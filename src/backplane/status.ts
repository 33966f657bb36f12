/** The backplane's keys in `/status/` and its figures in `/stats.json` and `/metrics`. */
import type { HistogramSnapshot } from '../metrics/histogram.ts'
import type { StatusBody } from '../tidings.ts'
import type { Backplane } from './backplane.ts'

/** The backplane as /stats.json reports it (and /metrics renders it). */
export interface BackplaneHealth {
  /** `redis` or `redis-cluster`. */
  readonly type: string
  /** `connecting`, `up`, `down` or `closed`. */
  readonly state: string
  readonly up: boolean
  readonly lastError: string | null
  /** Messages (and their bytes) accepted here and not yet published. */
  readonly buffered: number
  readonly bufferedBytes: number
  readonly published: number
  readonly received: number
  readonly dropped: number
  readonly rejected: number
  readonly reconnects: number
  readonly failures: number
  readonly sharedReplays: number
  /** Channels subscribed to (or being subscribed to). */
  readonly channels: number
  /** Publishes per shard. */
  readonly shards: Readonly<Record<string, number>>
  /** Seconds from accepting a message to the broker's acknowledgement of its publish. */
  readonly latency: HistogramSnapshot
}

export function backplaneHealth(backplane: Backplane): BackplaneHealth {
  const { stats, outbox } = backplane
  return {
    type: backplane.settings.type,
    state: backplane.state,
    up: backplane.state === 'up',
    lastError: backplane.lastError,
    buffered: outbox.length,
    bufferedBytes: outbox.bytes,
    published: stats.published,
    received: stats.received,
    dropped: outbox.dropped,
    rejected: stats.rejected,
    reconnects: stats.reconnects,
    failures: stats.failures,
    sharedReplays: stats.sharedReplays,
    channels: backplane.interest.size,
    shards: Object.fromEntries(backplane.shards),
    latency: backplane.latency.snapshot(),
  }
}

/**
 * Adds `backplane` (the type), `backplane.state`, `backplane.buffered`,
 * `backplane.dropped`, and the instance's shared history: `backplane.history` (`ok`, or
 * `lost` when the broker lost it, e.g. restarted without persistence) and
 * `backplane.history.lostAt` (epoch ms, or null), and `backplane.history.epoch` (the
 * history's identity on the broker: a new one means the old history is gone).
 */
export function backplaneStatusExtras(
  backplane: Backplane,
  instance: string
): (status: StatusBody) => void {
  return (status) => {
    const history = backplane.historyOf(instance)
    status.backplane = backplane.settings.type
    status['backplane.state'] = backplane.state
    status['backplane.buffered'] = backplane.outbox.length
    status['backplane.dropped'] = backplane.outbox.dropped
    status['backplane.history'] = history.state
    status['backplane.history.lostAt'] = history.lostAt
    status['backplane.history.epoch'] = history.epoch
  }
}
