/**
 * The cluster relay: hands every accepted message to each `cluster` peer's queue and sends
 * them in the background (after the admin POST has been answered), Aphlict's wire format
 * on the way out. Runtime-free: the adapter supplies the PeerTransport.
 */
import type { Config } from '../config/schema.ts'
import { LogLimiter } from '../log-limiter.ts'
import type { Clock, Logger, PeerAddress, PeerTransport, Scheduler } from '../ports.ts'
import type { Forwarded, Forwarder } from '../tidings.ts'
import { Peer, type PeerContext, type PeerStatus, type PeerTuning } from './peer.ts'
import { isLocalAdmin, type LocalAdmin } from './self.ts'
import { globalTimers, type Timers } from './timers.ts'

export interface RelayOptions {
  config: Pick<Config, 'cluster' | 'secret' | 'relay'>
  /** This server's fingerprint (Tidings.fingerprint). */
  fingerprint: string
  transport: PeerTransport
  clock: Clock
  logger: Logger
  /** Rate-limited lines (a node passes its own, Tidings.log); one is made when absent. */
  log?: LogLimiter
  scheduler: Scheduler
  timers?: Timers
  random?: () => number
  /** Called with each answered relay's round-trip time in ms, per peer origin. */
  observe?: (origin: string, ms: number) => void
}

/** `http://host:port` for a cluster entry, with IPv6 literals bracketed. */
export function peerOrigin(entry: { host: string; port: number; protocol: string }): string {
  const host =
    entry.host.includes(':') && !entry.host.startsWith('[') ? `[${entry.host}]` : entry.host
  return `${entry.protocol}://${host}:${entry.port}`
}

/** Hellos are acted on at most this often (ms). */
const HELLO_INTERVAL_MS = 1000

export class Relay implements Forwarder {
  readonly peers: readonly Peer[]
  readonly #options: RelayOptions
  readonly #timers: Timers
  readonly #context: PeerContext
  #pumpScheduled = false
  #closed = false
  #lastHello = Number.NEGATIVE_INFINITY

  constructor(options: RelayOptions) {
    this.#options = options
    this.#timers = options.timers ?? globalTimers
    const { config } = options
    const tuning: PeerTuning = config.relay
    const context: PeerContext = {
      transport: options.transport,
      clock: options.clock,
      logger: options.logger,
      log: options.log ?? new LogLimiter(options.logger, options.clock),
      timers: this.#timers,
      tuning,
      selfFingerprint: options.fingerprint,
      random: options.random ?? Math.random,
      observe: options.observe,
    }
    this.#context = context
    this.peers = config.cluster.map((entry) => {
      const secret = entry.secret ?? config.secret ?? undefined
      const address: PeerAddress = { origin: peerOrigin(entry), secret }
      return new Peer(address, context)
    })
  }

  /** New queue, age and backoff tuning (a reload), for every peer from its next message. */
  reconfigure(tuning: PeerTuning): void {
    this.#context.tuning = tuning
  }

  /**
   * Marks the peers that name one of this process's admin servers by a loopback address as
   * this server, so nothing is ever sent to them (others are recognised by their receipt).
   */
  recogniseLocal(locals: readonly LocalAdmin[]): void {
    this.#options.config.cluster.forEach((entry, index) => {
      if (isLocalAdmin(entry, locals)) this.peers[index]?.markSelf()
    })
  }

  /** Queues the message for every peer that does not have it yet; sends on the next turn. */
  forward(message: Forwarded): void {
    if (this.#closed || this.peers.length === 0) return
    const { instance, body, touched, at } = message
    const entry = { instance, body, touched, at }
    for (const peer of this.peers) peer.enqueue(entry)
    if (this.#pumpScheduled) return
    this.#pumpScheduled = true
    // Deferred so the POST that brought the message is answered before any relay goes out.
    this.#options.scheduler.defer(() => {
      this.#pumpScheduled = false
      for (const peer of this.peers) peer.pump()
    })
  }

  /** Tells every peer this node has just started (see HELLO_HEADER), in the background. */
  hello(): void {
    const { transport, fingerprint, config } = this.#options
    if (!transport.hello || this.#closed) return
    for (const peer of this.peers) {
      if (peer.state === 'self') continue
      const controller = new AbortController()
      const timer = this.#timers.setTimeout(() => controller.abort(), config.relay.timeout)
      void transport
        .hello(peer.address, fingerprint, controller.signal)
        .finally(() => this.#timers.clearTimeout(timer))
    }
  }

  /**
   * A node said hello: probe the peers that are down now. At most once a second, so hellos
   * from anyone cost at most one probe per down peer per second.
   */
  heardHello(): number {
    const now = this.#options.clock.now()
    if (this.#closed || now - this.#lastHello < HELLO_INTERVAL_MS) return 0
    this.#lastHello = now
    let probed = 0
    for (const peer of this.peers) if (peer.probeNow()) probed++
    if (probed > 0) {
      this.#options.logger.log(`A cluster node started; probing ${probed} down peers now.`)
    }
    return probed
  }

  status(): PeerStatus[] {
    return this.peers.map((peer) => peer.status())
  }

  /** Resolves when every reachable peer's queue has gone out, or after `timeoutMs`. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = this.#options.clock.now() + timeoutMs
    while (!this.peers.every((peer) => peer.settled) && this.#options.clock.now() < deadline) {
      await new Promise<void>((resolve) => this.#timers.setTimeout(resolve, 10))
    }
  }

  /** Flushes (bounded), then stops every peer and closes the transport. Idempotent. */
  async close(flushMs: number): Promise<void> {
    if (this.#closed) return
    await this.flush(flushMs)
    this.#closed = true
    for (const peer of this.peers) peer.stop()
    await this.#options.transport.close?.()
  }
}
