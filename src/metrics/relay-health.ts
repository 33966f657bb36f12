/**
 * Peer health for /metrics and the dashboard, from the relay's own per-peer status plus a
 * latency histogram per peer fed by the relay's `observe` hook (round-trip time of every
 * answered relay). Runtime-free.
 */
import type { Relay } from '../relay/relay.ts'
import { Histogram, type HistogramSnapshot } from './histogram.ts'
import type { PeerHealth } from './stats.ts'

/** Relay round-trip times per peer origin; `observe` is the Relay's `observe` option. */
export class PeerLatencies {
  readonly #byPeer = new Map<string, Histogram>()

  readonly observe = (origin: string, ms: number): void => {
    let histogram = this.#byPeer.get(origin)
    if (!histogram) {
      histogram = new Histogram()
      this.#byPeer.set(origin, histogram)
    }
    histogram.observe(ms / 1000)
  }

  /** Seconds, Prometheus-style buckets; empty for a peer never answered. */
  snapshot(origin: string): HistogramSnapshot {
    return (this.#byPeer.get(origin) ?? new Histogram()).snapshot()
  }
}

/** States in which relayed messages reach the peer (or need not: it is this server). */
const UP_STATES = new Set(['up', 'unknown', 'self'])

/** The relay's peers as PeerHealth, with their latency histograms when measured. */
export function relayHealth(
  relay: Pick<Relay, 'peers'> | undefined,
  latencies?: PeerLatencies
): PeerHealth[] {
  if (!relay) return []
  return relay.peers.map((peer) => {
    const status = peer.status()
    return {
      peer: status.peer,
      state: status.state,
      up: UP_STATES.has(status.state),
      failures: status.failures,
      queueDepth: status.queue,
      sent: status.relayed,
      failed: status.failed,
      dropped: status.dropped,
      lastSuccess: status.lastSuccess,
      latency: latencies?.snapshot(status.peer),
    }
  })
}
