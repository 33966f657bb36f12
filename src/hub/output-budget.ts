/**
 * The output budget: bytes waiting to go out, per socket and for the process. A socket's
 * waiting output is what its ClientSocket reports (on Node: this turn's batch plus the unsent
 * socket buffer), checked where bytes are queued, not where they are flushed: a message or
 * replay that would take a socket past `limits.slowConsumerBytes` closes it with 4008 instead
 * (unless nothing is waiting: one message always fits).
 *
 * Sockets with more than WATCH_BYTES waiting are watched; when the running estimate of their
 * total passes `limits.outputBytes`, the exact total is taken and the sockets with the most
 * waiting are closed (4008) until it fits. The sweep recomputes it every second too.
 */
import type { Limits } from '../config/schema.ts'
import type { Outbound, Scheduler } from '../ports.ts'
import type { Connection } from './connection.ts'

/** A socket with less than this waiting is draining normally and is not tracked. */
export const WATCH_BYTES = 16 * 1024

export type OutputLimit = 'slowConsumerBytes' | 'outputBytes'

export class OutputBudget {
  readonly #watched = new Set<Connection>()
  /** At least the total waiting on watched sockets (drains are only seen by enforce()). */
  #estimate = 0
  #enforceScheduled = false
  /** The exact total as of the last enforce(). */
  waiting = 0

  constructor(
    private limits: Pick<Limits, 'slowConsumerBytes' | 'outputBytes'>,
    private readonly scheduler: Scheduler,
    /** Must disconnect the connection and close its socket with 4008. */
    private readonly close: (connection: Connection, limit: OutputLimit) => void
  ) {}

  /** New budgets (a reload). */
  reconfigure(limits: Pick<Limits, 'slowConsumerBytes' | 'outputBytes'>): void {
    this.limits = limits
  }

  /** Sockets being watched (more than WATCH_BYTES waiting when last seen). */
  get watched(): number {
    return this.#watched.size
  }

  /**
   * True when `bytes` more may be queued for `connection`. Otherwise it is closed and false
   * is returned: nothing more may be sent to it. A socket with nothing waiting always takes
   * one message, whatever its size (a message may be larger than the budget).
   */
  admit(connection: Connection, bytes: number): boolean {
    const pending = connection.socket.pending
    const after = pending + bytes
    if (after > this.limits.slowConsumerBytes && pending > 0) {
      this.#watched.delete(connection)
      this.close(connection, 'slowConsumerBytes')
      return false
    }
    if (after > WATCH_BYTES) {
      this.#watched.add(connection)
      this.#estimate += bytes
      if (this.#estimate > this.limits.outputBytes && !this.#enforceScheduled) {
        this.#enforceScheduled = true
        this.scheduler.defer(() => this.enforce())
      }
    }
    return true
  }

  /** A connection went away. */
  forget(connection: Connection): void {
    this.#watched.delete(connection)
  }

  /**
   * Takes the exact total waiting on watched sockets; past `limits.outputBytes`, closes the
   * sockets with the most waiting until the rest fits.
   */
  enforce(): void {
    this.#enforceScheduled = false
    const waiting: [Connection, number][] = []
    let total = 0
    for (const connection of this.#watched) {
      const bytes = connection.open ? connection.socket.pending : 0
      if (bytes < WATCH_BYTES) {
        this.#watched.delete(connection)
        continue
      }
      waiting.push([connection, bytes])
      total += bytes
    }
    const limit = this.limits.outputBytes
    if (total > limit) {
      waiting.sort((a, b) => b[1] - a[1])
      for (const [connection, bytes] of waiting) {
        if (total <= limit) break
        total -= bytes
        this.#watched.delete(connection)
        this.close(connection, 'outputBytes')
      }
    }
    this.waiting = total
    this.#estimate = total
  }
}

/**
 * The part of `messages` that a replay may hand a socket with `room` bytes to spare: those
 * that fit, and the first that does not (queuing that one is what closes a socket that is
 * not reading, see OutputBudget.admit). Whoever computes a replay for a socket held
 * elsewhere stops there: the rest could never be sent.
 */
export function withinRoom(messages: readonly Outbound[], room: number): readonly Outbound[] {
  let used = 0
  for (let i = 0; i < messages.length; i++) {
    used += (messages[i] as Outbound).bytes.byteLength
    if (used > room) return messages.slice(0, i + 1)
  }
  return messages
}
