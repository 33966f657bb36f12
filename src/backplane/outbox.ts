/**
 * Messages accepted here and not yet on the broker: a FIFO bounded in messages and bytes
 * (`backplane.buffer`, `backplane.bufferBytes`). While the broker is reachable it holds only
 * what is in flight; while it is not, it keeps the newest, dropping the oldest past the
 * bounds (counted). Nothing older than the history window is worth publishing late.
 */
import { Deque } from '../util/deque.ts'

export interface OutboxEntry {
  readonly instance: string
  readonly body: Uint8Array
  readonly subscribers: readonly string[]
  /** When the message was first accepted (Clock ms). */
  readonly at: number
}

export interface OutboxBounds {
  buffer: number
  bufferBytes: number
}

export class Outbox {
  readonly #queue = new Deque<OutboxEntry>()
  #bytes = 0
  /** Pushed out past the bounds, or too old to publish. */
  dropped = 0

  constructor(private bounds: () => OutboxBounds) {}

  get length(): number {
    return this.#queue.length
  }

  get bytes(): number {
    return this.#bytes
  }

  /** Adds at the tail; returns how many of the oldest were dropped to make room. */
  push(entry: OutboxEntry): number {
    this.#queue.push(entry)
    this.#bytes += entry.body.byteLength
    const { buffer, bufferBytes } = this.bounds()
    let dropped = 0
    while (this.#queue.length > 0 && (this.#queue.length > buffer || this.#bytes > bufferBytes)) {
      this.shift()
      dropped++
    }
    this.dropped += dropped
    return dropped
  }

  /** Puts back at the head an entry that could not be published (it goes first again). */
  unshift(entry: OutboxEntry): void {
    this.#queue.unshift(entry)
    this.#bytes += entry.body.byteLength
  }

  shift(): OutboxEntry | undefined {
    const entry = this.#queue.shift()
    if (entry) this.#bytes -= entry.body.byteLength
    return entry
  }

  /** Drops entries at the head accepted before `cutoff`; returns how many. */
  expire(cutoff: number): number {
    let expired = 0
    for (let head = this.#queue.peek(); head && head.at < cutoff; head = this.#queue.peek()) {
      this.shift()
      expired++
    }
    this.dropped += expired
    return expired
  }
}
