/**
 * One cluster peer as the relay sees it: a bounded FIFO of messages waiting to go, a small
 * window of requests in flight, retries after full-jitter backoff, and a circuit breaker
 * (circuit.ts). It learns the peer's fingerprint from every receipt, as Aphlict does.
 */
import type { RelayOptions } from '../config/schema.ts'
import type { LogLimiter } from '../log-limiter.ts'
import type { Clock, Logger, PeerAddress, PeerReply, PeerTransport } from '../ports.ts'
import { Deque } from '../util/deque.ts'
import { Circuit, type PeerState } from './circuit.ts'
import { errorText, receiptFingerprint, retryable } from './outcome.ts'
import type { TimerHandle, Timers } from './timers.ts'

export type { PeerState } from './circuit.ts'

/** One message waiting to be relayed. The body and touched list are shared by every peer. */
export interface RelayEntry {
  readonly instance: string
  readonly body: Uint8Array
  readonly touched: readonly string[]
  /** When it was accepted (Clock ms), for maxAge. */
  readonly at: number
}

export type PeerTuning = Pick<
  RelayOptions,
  'timeout' | 'window' | 'queue' | 'queueBytes' | 'maxAge' | 'retryBase' | 'retryMax' | 'failures'
>

export interface PeerContext {
  transport: PeerTransport
  clock: Clock
  logger: Logger
  /** For lines a peer can cause again and again. */
  log: LogLimiter
  timers: Timers
  /** Swapped by a reload (Relay.reconfigure); read on every use. */
  tuning: PeerTuning
  /** This server's fingerprint: a receipt carrying it means the peer is us. */
  selfFingerprint: string
  /** [0, 1), for jitter. */
  random: () => number
  /** Called with each answered relay's round-trip time in ms (for a latency histogram). */
  observe?: ((origin: string, ms: number) => void) | undefined
}

/** A peer's health and counters, as `/status/` shows them. */
export interface PeerStatus {
  peer: string
  state: PeerState
  fingerprint: string | null
  /** Clock ms of the last relay the peer accepted (2xx), or null. */
  lastSuccess: number | null
  /** Why the last relay failed (e.g. "connect ECONNREFUSED …", "timed out after 5000 ms"). */
  lastError: string | null
  /** Consecutive failures. */
  failures: number
  /** Failed attempts in all (errors, timeouts, 5xx/401/403/408/429 answers). */
  failed: number
  queue: number
  inFlight: number
  relayed: number
  /** Not sent because the peer already has the message (its fingerprint is in `touched`). */
  skipped: number
  /** Lost: pushed out of a full queue, or older than maxAge before it could go. */
  dropped: number
  /** Answered with a 4xx that retrying cannot fix (e.g. 400, 413): the peer is up, the message is not relayed. */
  rejected: number
}

export class Peer {
  fingerprint: string | undefined
  lastSuccess: number | null = null
  lastError: string | null = null
  relayed = 0
  failed = 0
  skipped = 0
  dropped = 0
  rejected = 0
  readonly #circuit: Circuit
  readonly #queue = new Deque<RelayEntry>()
  #queuedBytes = 0
  #inFlight = 0
  #retryTimer: TimerHandle | undefined
  readonly #aborts = new Set<AbortController>()
  #stopped = false

  constructor(
    readonly address: PeerAddress,
    private readonly context: PeerContext
  ) {
    this.#circuit = new Circuit(() => context.tuning, context.random)
  }

  get label(): string {
    return this.address.origin
  }

  get state(): PeerState {
    return this.#circuit.state
  }

  /** True when nothing is waiting or in flight, or the peer is not worth waiting for. */
  get settled(): boolean {
    if (this.state === 'self' || this.#circuit.open) return true
    return this.#queue.length === 0 && this.#inFlight === 0
  }

  /** This peer is this very server: drop what is queued, never send to it. */
  markSelf(): void {
    if (this.state === 'self') return
    this.#circuit.state = 'self'
    this.fingerprint = this.context.selfFingerprint
    this.skipped += this.#queue.length
    this.#clearQueue()
    this.context.logger.log(`Cluster peer ${this.label} is this server; not relaying to it.`)
  }

  /** Queues `entry` unless the peer already has it. Call pump() to send. */
  enqueue(entry: RelayEntry): void {
    if (this.#stopped || this.state === 'self') return
    if (this.fingerprint !== undefined && entry.touched.includes(this.fingerprint)) {
      this.skipped++
      return
    }
    this.#expireHead(entry.at)
    this.#queue.push(entry)
    this.#queuedBytes += entry.body.byteLength
    const { queue, queueBytes } = this.context.tuning
    while (
      this.#queue.length > queue ||
      (this.#queuedBytes > queueBytes && this.#queue.length > 1)
    ) {
      this.#take()
      this.dropped++
    }
  }

  /** Sends queued messages while the window and the circuit allow. */
  pump(): void {
    if (this.#stopped || this.state === 'self') return
    const now = this.context.clock.now()
    const limit = this.#circuit.limit(this.#retryTimer !== undefined)
    while (this.#inFlight < limit && this.#queue.length > 0) {
      const entry = this.#take() as RelayEntry
      if (now - entry.at > this.context.tuning.maxAge) {
        this.dropped++
      } else if (this.fingerprint !== undefined && entry.touched.includes(this.fingerprint)) {
        this.skipped++
      } else {
        void this.#send(entry)
      }
    }
  }

  /** Aborts everything in flight, drops the queue and cancels the retry timer. */
  stop(): void {
    this.#stopped = true
    this.#cancelRetry()
    for (const controller of this.#aborts) controller.abort(new Error('relay stopped'))
    this.#clearQueue()
  }

  status(): PeerStatus {
    return {
      peer: this.label,
      state: this.state,
      fingerprint: this.fingerprint ?? null,
      lastSuccess: this.lastSuccess,
      lastError: this.lastError,
      failures: this.#circuit.failures,
      failed: this.failed,
      queue: this.#queue.length,
      inFlight: this.#inFlight,
      relayed: this.relayed,
      skipped: this.skipped,
      dropped: this.dropped,
      rejected: this.rejected,
    }
  }

  #take(): RelayEntry | undefined {
    const entry = this.#queue.shift()
    if (entry) this.#queuedBytes -= entry.body.byteLength
    return entry
  }

  #clearQueue(): void {
    this.#queue.clear()
    this.#queuedBytes = 0
  }

  /** Drops entries at the head that are already too old to be worth sending. */
  #expireHead(now: number): void {
    const { maxAge } = this.context.tuning
    for (let head = this.#queue.peek(); head && now - head.at > maxAge; head = this.#queue.peek()) {
      this.#take()
      this.dropped++
    }
  }

  async #send(entry: RelayEntry): Promise<void> {
    const { transport, timers, tuning, clock } = this.context
    const epoch = this.#circuit.epoch
    const started = clock.now()
    const controller = new AbortController()
    const timer = timers.setTimeout(
      () => controller.abort(new Error(`timed out after ${tuning.timeout} ms`)),
      tuning.timeout
    )
    this.#aborts.add(controller)
    this.#inFlight++
    let reply: PeerReply | undefined
    let failure: string | undefined
    try {
      reply = await transport.post(
        this.address,
        entry.instance,
        entry.body,
        controller.signal,
        started - entry.at
      )
      if (retryable(reply.status)) failure = `answered HTTP ${reply.status}`
    } catch (error) {
      failure = controller.signal.aborted
        ? errorText(controller.signal.reason)
        : errorText(error) || 'no reply'
    } finally {
      timers.clearTimeout(timer)
      this.#aborts.delete(controller)
      this.#inFlight--
    }
    if (this.#stopped) return
    if (failure !== undefined || !reply) {
      this.#onFailure(entry, failure ?? 'no reply', epoch)
    } else {
      this.context.observe?.(this.label, clock.now() - started)
      this.#onAnswer(reply)
    }
    this.pump()
  }

  #onAnswer(reply: PeerReply): void {
    this.#learn(receiptFingerprint(reply.body))
    if (this.state === 'self') return
    if (reply.status >= 200 && reply.status < 300) {
      this.relayed++
      this.lastSuccess = this.context.clock.now()
    } else {
      this.rejected++
    }
    if (this.#circuit.succeed()) {
      this.context.logger.log(`Cluster peer ${this.label} is back up; relaying to it again.`)
    }
    this.#cancelRetry()
  }

  #learn(fingerprint: string | undefined): void {
    if (fingerprint === undefined || fingerprint === this.fingerprint) return
    const previous = this.fingerprint
    this.fingerprint = fingerprint
    if (fingerprint === this.context.selfFingerprint) {
      this.markSelf()
      return
    }
    if (previous === undefined) {
      this.context.logger.log(`Cluster peer ${this.label} has fingerprint "${fingerprint}".`)
      return
    }
    // Rate-limited: a name that several servers answer behind (a load balancer) changes on
    // every receipt.
    this.context.log.log(
      `peer-fingerprint:${this.label}`,
      `Cluster peer ${this.label} restarted (or several servers answer at that address): fingerprint "${previous}" is now "${fingerprint}".`
    )
  }

  #onFailure(entry: RelayEntry, reason: string, epoch: number): void {
    const { clock, logger, timers, tuning } = this.context
    // The message goes first again (unless it is too old or the queue is full).
    if (clock.now() - entry.at <= tuning.maxAge && this.#queue.length < tuning.queue) {
      this.#queue.unshift(entry)
      this.#queuedBytes += entry.body.byteLength
    } else {
      this.dropped++
    }
    this.lastError = reason
    this.failed++
    const outcome = this.#circuit.fail(epoch)
    if (!outcome) return
    if (outcome.opened) {
      logger.warn(
        `Cluster peer ${this.label} is down after ${this.#circuit.failures} failed relays (${reason}); queueing at most ${tuning.queue} messages for ${tuning.maxAge} ms and probing it with backoff.`
      )
    } else if (logger.tracing) {
      logger.trace(`Cluster peer ${this.label} relay failed (${reason}).`)
    }
    this.#cancelRetry()
    this.#retryTimer = timers.setTimeout(() => {
      this.#retryTimer = undefined
      this.#circuit.halfOpen()
      this.pump()
    }, outcome.delay)
  }

  /**
   * Someone just started (a hello): if this peer is down, probe it now rather than after
   * the back-off. Returns whether it was down.
   */
  probeNow(): boolean {
    if (this.#stopped || this.state !== 'down') return false
    this.#cancelRetry()
    this.#circuit.halfOpen()
    this.pump()
    return true
  }

  #cancelRetry(): void {
    if (this.#retryTimer !== undefined) this.context.timers.clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
  }
}
