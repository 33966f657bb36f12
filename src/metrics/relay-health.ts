/**
 * Peer health for /metrics and the dashboard: the relay's own per-peer status plus what a
 * measuring wrapper around the PeerTransport saw (failed requests, round-trip times).
 * Wrapping the port keeps the relay itself free of metrics code. Runtime-free.
 */
import type { PeerAddress, PeerReply, PeerTransport } from '../ports.ts'
import type { Relay } from '../relay/relay.ts'
import { Histogram, type HistogramSnapshot } from './histogram.ts'
import type { PeerHealth } from './stats.ts'

interface PeerCounters {
  failed: number
  latency: Histogram
}

/** A PeerTransport that times every relay request per peer origin and counts failures. */
export class MeasuredTransport implements PeerTransport {
  readonly #inner: PeerTransport
  readonly #now: () => number
  readonly #peers = new Map<string, PeerCounters>()

  constructor(inner: PeerTransport, now: () => number = () => performance.now()) {
    this.#inner = inner
    this.#now = now
  }

  #counters(origin: string): PeerCounters {
    let counters = this.#peers.get(origin)
    if (!counters) {
      counters = { failed: 0, latency: new Histogram() }
      this.#peers.set(origin, counters)
    }
    return counters
  }

  async post(
    peer: PeerAddress,
    instance: string,
    body: Uint8Array,
    signal: AbortSignal
  ): Promise<PeerReply> {
    const counters = this.#counters(peer.origin)
    const start = this.#now()
    let reply: PeerReply
    try {
      reply = await this.#inner.post(peer, instance, body, signal)
    } catch (error) {
      counters.failed++
      throw error
    }
    counters.latency.observe((this.#now() - start) / 1000)
    if (reply.status < 200 || reply.status >= 300) counters.failed++
    return reply
  }

  close(): Promise<void> {
    return this.#inner.close?.() ?? Promise.resolve()
  }

  /** Failed requests (error, timeout or a non-2xx answer) and latencies seen for `origin`. */
  measured(origin: string): { failed: number; latency: HistogramSnapshot } {
    const counters = this.#counters(origin)
    return { failed: counters.failed, latency: counters.latency.snapshot() }
  }
}

/** States in which relayed messages reach the peer (or need not: it is this server). */
const UP_STATES = new Set(['up', 'unknown', 'self'])

/** The relay's peers as PeerHealth, with the wrapper's failures and latencies when given. */
export function relayHealth(
  relay: Pick<Relay, 'peers'> | undefined,
  measured?: MeasuredTransport
): PeerHealth[] {
  if (!relay) return []
  return relay.peers.map((peer) => {
    const status = peer.status()
    const seen = measured?.measured(peer.address.origin)
    return {
      peer: status.peer,
      state: status.state,
      up: UP_STATES.has(status.state),
      failures: status.failures,
      queueDepth: status.queue,
      sent: status.relayed,
      failed: seen?.failed ?? 0,
      dropped: status.dropped,
      lastSuccess: status.lastSuccess,
      latency: seen?.latency,
    }
  })
}
