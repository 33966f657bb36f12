/**
 * One cluster peer as the relay sees it: a bounded FIFO of messages waiting to go, a small
 * window of requests in flight, retries with full-jitter backoff and a circuit breaker
 * (closed → open after `failures` consecutive failures → one probe at a time until a
 * success closes it again). It learns the peer's fingerprint from every receipt.
 */
import type { RelayOptions } from '../config/schema.ts'
import type { Clock, Logger, PeerAddress, PeerReply, PeerTransport } from '../ports.ts'
import { fullJitter } from './backoff.ts'
import { Deque } from './deque.ts'
import type { TimerHandle, Timers } from './timers.ts'

/**
 * `unknown` never answered yet; `up` last request succeeded; `retrying` failed fewer than
 * `failures` times in a row; `down` circuit open, waiting to probe; `probing` one probe in
 * flight or waiting for a message to probe with; `self` this very server.
 */
export type PeerState = 'unknown' | 'up' | 'retrying' | 'down' | 'probing' | 'self'

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
  timers: Timers
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

const RECEIPT_LIMIT = 4096

/** The fingerprint in an Aphlict receipt `{"fingerprint":"…"}`, if any. */
function receiptFingerprint(body: string): string | undefined {
  if (body.length === 0 || body.length > RECEIPT_LIMIT) return undefined
  try {
    const value = JSON.parse(body) as { fingerprint?: unknown }
    const fingerprint = value?.fingerprint
    return typeof fingerprint === 'string' && fingerprint.length > 0 ? fingerprint : undefined
  } catch {
    return undefined
  }
}

/** Statuses worth retrying: the peer (or its proxy) may accept the same request later. */
function retryable(status: number): boolean {
  return status === 401 || status === 403 || status === 408 || status === 429 || status >= 500
}

export class Peer {
  state: PeerState = 'unknown'
  fingerprint: string | undefined
  lastSuccess: number | null = null
  lastError: string | null = null
  relayed = 0
  failed = 0
  skipped = 0
  dropped = 0
  rejected = 0
  readonly #queue = new Deque<RelayEntry>()
  #queuedBytes = 0
  #inFlight = 0
  #failures = 0
  /** Bumped on every outcome that changes health, so stale in-flight failures count once. */
  #epoch = 0
  #retryTimer: TimerHandle | undefined
  readonly #aborts = new Set<AbortController>()
  #stopped = false

  constructor(
    readonly address: PeerAddress,
    private readonly context: PeerContext
  ) {}

  /** This peer is this very server: drop what is queued, never send to it. */
  markSelf(): void {
    if (this.state === 'self') return
    this.state = 'self'
    this.skipped += this.#queue.length
    this.#queue.clear()
    this.#queuedBytes = 0
    this.context.logger.log(`Cluster peer ${this.label} is this server; not relaying to it.`)
  }

  get label(): string {
    return this.address.origin
  }

  /** True when nothing is waiting or in flight, or the peer is not worth waiting for. */
  get settled(): boolean {
    if (this.state === 'self' || this.state === 'down' || this.state === 'probing') return true
    return this.#queue.length === 0 && this.#inFlight === 0
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
    while (this.#inFlight < this.#limit() && this.#queue.length > 0) {
      const entry = this.#take() as RelayEntry
      if (now - entry.at > this.context.tuning.maxAge) {
        this.dropped++
        continue
      }
      if (this.fingerprint !== undefined && entry.touched.includes(this.fingerprint)) {
        this.skipped++
        continue
      }
      void this.#send(entry)
    }
  }

  /** Aborts everything in flight, drops the queue and cancels the retry timer. */
  stop(): void {
    this.#stopped = true
    if (this.#retryTimer !== undefined) this.context.timers.clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    for (const controller of this.#aborts) controller.abort(new Error('relay stopped'))
    this.#queue.clear()
    this.#queuedBytes = 0
  }

  status(): PeerStatus {
    return {
      peer: this.label,
      state: this.state,
      fingerprint: this.fingerprint ?? null,
      lastSuccess: this.lastSuccess,
      lastError: this.lastError,
      failures: this.#failures,
      failed: this.failed,
      queue: this.#queue.length,
      inFlight: this.#inFlight,
      relayed: this.relayed,
      skipped: this.skipped,
      dropped: this.dropped,
      rejected: this.rejected,
    }
  }

  #limit(): number {
    if (this.#retryTimer !== undefined) return 0
    switch (this.state) {
      case 'unknown':
      case 'up':
        return this.context.tuning.window
      case 'retrying':
      case 'probing':
        return 1
      default:
        return 0
    }
  }

  #take(): RelayEntry | undefined {
    const entry = this.#queue.shift()
    if (entry) this.#queuedBytes -= entry.body.byteLength
    return entry
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
    const epoch = this.#epoch
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
      reply = await transport.post(this.address, entry.instance, entry.body, controller.signal)
    } catch (error) {
      failure = controller.signal.aborted
        ? String((controller.signal.reason as Error)?.message ?? 'aborted')
        : errorText(error)
    } finally {
      timers.clearTimeout(timer)
      this.#aborts.delete(controller)
      this.#inFlight--
    }
    if (this.#stopped) return
    if (reply && retryable(reply.status)) failure = `answered HTTP ${reply.status}`
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
    const { clock, logger } = this.context
    if (reply.status >= 200 && reply.status < 300) {
      this.relayed++
      this.lastSuccess = clock.now()
    } else {
      this.rejected++
    }
    if (this.state === 'down' || this.state === 'probing') {
      logger.log(`Cluster peer ${this.label} is back up; relaying to it again.`)
    }
    this.state = 'up'
    this.#failures = 0
    this.#epoch++
    if (this.#retryTimer !== undefined) this.context.timers.clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
  }

  #learn(fingerprint: string | undefined): void {
    if (fingerprint === undefined || fingerprint === this.fingerprint) return
    const { logger, selfFingerprint } = this.context
    const previous = this.fingerprint
    this.fingerprint = fingerprint
    if (fingerprint === selfFingerprint) {
      this.markSelf()
      return
    }
    logger.log(
      previous === undefined
        ? `Cluster peer ${this.label} has fingerprint "${fingerprint}".`
        : `Cluster peer ${this.label} restarted: fingerprint "${previous}" is now "${fingerprint}".`
    )
  }

  #onFailure(entry: RelayEntry, reason: string, epoch: number): void {
    const { clock, logger, timers, tuning, random } = this.context
    const now = clock.now()
    // The message goes first again (unless it is too old or the queue is full).
    if (now - entry.at <= tuning.maxAge && this.#queue.length < tuning.queue) {
      this.#queue.unshift(entry)
      this.#queuedBytes += entry.body.byteLength
    } else {
      this.dropped++
    }
    this.lastError = reason
    this.failed++
    // Requests started before the last counted outcome fail for the same reason: count once.
    if (epoch !== this.#epoch) return
    this.#epoch++
    this.#failures++
    const wasDown = this.state === 'down' || this.state === 'probing'
    if (this.#failures >= tuning.failures) {
      this.state = 'down'
      if (!wasDown) {
        logger.warn(
          `Cluster peer ${this.label} is down after ${this.#failures} failed relays (${reason}); queueing at most ${tuning.queue} messages for ${tuning.maxAge} ms and probing it with backoff.`
        )
      }
    } else {
      this.state = 'retrying'
      if (logger.tracing) logger.trace(`Cluster peer ${this.label} relay failed (${reason}).`)
    }
    const delay = fullJitter(this.#failures, tuning.retryBase, tuning.retryMax, random)
    if (this.#retryTimer !== undefined) timers.clearTimeout(this.#retryTimer)
    this.#retryTimer = timers.setTimeout(() => {
      this.#retryTimer = undefined
      if (this.state === 'down') this.state = 'probing'
      this.pump()
    }, delay)
  }
}

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = (error as Error & { cause?: unknown }).cause
  const code = (error as Error & { code?: unknown }).code
  if (cause instanceof Error && cause.message) return cause.message
  return error.message || (typeof code === 'string' ? code : 'error')
}
