/**
 * A peer's health as a circuit breaker: closed (`unknown`, `up`, `retrying`) → open (`down`)
 * after `failures` consecutive failures → half-open (`probing`, one request at a time) →
 * closed again on the first answer. Pure state; the Peer owns timers and logging.
 */
import type { RelayOptions } from '../config/schema.ts'
import { fullJitter } from './backoff.ts'

/**
 * `unknown` never answered yet; `up` last request answered; `retrying` failed fewer than
 * `failures` times in a row; `down` circuit open, waiting to probe; `probing` one probe in
 * flight or waiting for a message to probe with; `self` this very server.
 */
export type PeerState = 'unknown' | 'up' | 'retrying' | 'down' | 'probing' | 'self'

export type CircuitTuning = Pick<RelayOptions, 'window' | 'failures' | 'retryBase' | 'retryMax'>

export class Circuit {
  state: PeerState = 'unknown'
  /** Consecutive failures. */
  failures = 0
  /** Bumped on every counted outcome, so requests that fail together count once. */
  epoch = 0

  constructor(
    /** Read on every use: a reload swaps it. */
    private readonly tuningOf: () => CircuitTuning,
    private readonly random: () => number
  ) {}

  private get tuning(): CircuitTuning {
    return this.tuningOf()
  }

  /** True in `down` and `probing`: the peer is not reachable as far as we know. */
  get open(): boolean {
    return this.state === 'down' || this.state === 'probing'
  }

  /** Requests allowed in flight now (none while a retry delay runs). */
  limit(waiting: boolean): number {
    if (waiting) return 0
    if (this.state === 'unknown' || this.state === 'up') return this.tuning.window
    return this.state === 'retrying' || this.state === 'probing' ? 1 : 0
  }

  /** The peer answered. Returns true when that closes an open circuit. */
  succeed(): boolean {
    const reopened = this.open
    this.state = 'up'
    this.failures = 0
    this.epoch++
    return reopened
  }

  /**
   * A request started at `epoch` failed. Returns undefined when an outcome was counted since
   * it started (same outage), else the delay before the next attempt and whether this
   * failure just opened the circuit.
   */
  fail(epoch: number): { delay: number; opened: boolean } | undefined {
    if (epoch !== this.epoch || this.state === 'self') return undefined
    this.epoch++
    this.failures++
    const wasOpen = this.open
    this.state = this.failures >= this.tuning.failures ? 'down' : 'retrying'
    const { retryBase, retryMax } = this.tuning
    return {
      delay: fullJitter(this.failures, retryBase, retryMax, this.random),
      opened: this.state === 'down' && !wasOpen,
    }
  }

  /** The retry delay is over: an open circuit lets one probe through. */
  halfOpen(): void {
    if (this.state === 'down') this.state = 'probing'
  }
}
