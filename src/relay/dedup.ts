/**
 * The bounded memory of message identities a node has already accepted, so a message that
 * reaches it again by another path (any mesh of 3+ nodes, a ring, a retried relay) is
 * delivered once. Bounded in entries and in age; O(1) amortised per message.
 */

export interface DedupOptions {
  /** Identities kept at most; 0 remembers nothing (deduplication off). */
  size: number
  /** Milliseconds an identity is remembered. */
  age: number
}

export class DedupCache {
  /** identity → time first seen. A Map iterates in insertion order, so the oldest is first. */
  readonly #seen = new Map<string, number>()
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
    this.#expire(now)
    const seenAt = this.#seen.get(identity)
    if (seenAt !== undefined && seenAt > now - age) return false
    if (seenAt !== undefined) this.#seen.delete(identity)
    while (this.#seen.size >= size) {
      const oldest = this.#seen.keys().next().value as string
      this.#seen.delete(oldest)
      this.evicted++
    }
    this.#seen.set(identity, now)
    return true
  }

  /** Forgets `identity` (a message that failed after it was recorded may come again). */
  forget(identity: string): void {
    this.#seen.delete(identity)
  }

  /** Drops identities older than `age` from the front (the oldest first). */
  #expire(now: number): void {
    const horizon = now - this.options.age
    // Bounded work per call keeps add() O(1) amortised: each entry is deleted at most once.
    for (const [identity, seenAt] of this.#seen) {
      if (seenAt > horizon) break
      this.#seen.delete(identity)
    }
  }
}
