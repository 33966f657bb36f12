/** The last `size` message ids seen, to drop repeats (replays, cluster copies): O(1) each. */
export class RecentIds {
  readonly #seen = new Set<string>()
  /** The same ids in arrival order, so the oldest is the one forgotten. */
  readonly #ring: (string | undefined)[]
  #at = 0

  constructor(readonly size: number) {
    this.#ring = new Array(size)
  }

  /** Records `id`; false when it was already among the last `size`. */
  add(id: string): boolean {
    if (this.#seen.has(id)) return false
    const evicted = this.#ring[this.#at]
    if (evicted !== undefined) this.#seen.delete(evicted)
    this.#ring[this.#at] = id
    this.#at = (this.#at + 1) % this.size
    this.#seen.add(id)
    return true
  }
}
