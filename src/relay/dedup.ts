/**
 * The bounded memory of message identities a node has already accepted, so a message that
 * reaches it again by another path (any mesh of 3+ nodes, a ring, a retried relay) is
 * delivered once. Bounded in entries and in age; O(1) per message.
 *
 * Arrival order is kept in a queue beside the map, so the oldest identity is found without
 * iterating the map: a Map that is deleted from its front and then iterated skips every
 * deleted slot until it is rehashed, which made each add O(entries) once the memory was full.
 */
import { Deque } from '../util/deque.ts'

export interface DedupOptions {
  /** Identities kept at most; 0 remembers nothing (deduplication off). */
  size: number
  /** Milliseconds an identity is remembered. */
  age: number
}

interface Arrival {
  identity: string
  at: number
  /** Which add this was: a later add (or a forget) of the same identity makes it stale. */
  serial: number
}

export class DedupCache {
  /** identity → the serial of the add that recorded it. */
  readonly #seen = new Map<string, Arrival>()
  readonly #order = new Deque<Arrival>()
  #serial = 0
  /** Identities forgotten early because the cache was full (a sign `size` is too small). */
  evicted = 0

  constructor(readonly options: DedupOptions) {}

  get size(): number {
    return this.#seen.size
  }

  /**
   * Records `identity` seen at `now`. Returns true the first time (deliver it), false when it
   * was seen within `age` (a duplicate: drop it).
   */
  add(identity: string, now: number): boolean {
    const { size, age } = this.options
    if (size === 0) return true
    this.#expire(now - age)
    const seen = this.#seen.get(identity)
    if (seen !== undefined && seen.at > now - age) return false
    while (this.#seen.size >= size) {
      if (this.#drop(this.#order.shift() as Arrival)) this.evicted++
    }
    const arrival = { identity, at: now, serial: ++this.#serial }
    this.#seen.set(identity, arrival)
    this.#order.push(arrival)
    return true
  }

  /** Forgets `identity` (a message that failed after it was recorded may come again). */
  forget(identity: string): void {
    this.#seen.delete(identity)
  }

  /** Drops the identities first seen at or before `horizon`, oldest first. */
  #expire(horizon: number): void {
    for (
      let oldest = this.#order.peek();
      oldest && oldest.at <= horizon;
      oldest = this.#order.peek()
    ) {
      this.#drop(this.#order.shift() as Arrival)
    }
  }

  /** Removes `arrival` from the map unless a later add replaced it. True when it did. */
  #drop(arrival: Arrival): boolean {
    if (this.#seen.get(arrival.identity) !== arrival) return false
    this.#seen.delete(arrival.identity)
    return true
  }
}
