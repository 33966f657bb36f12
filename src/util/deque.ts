/** A growable ring buffer: O(1) push, shift and unshift (relay queues, the history ledger). */

export class Deque<T> {
  #items: (T | undefined)[]
  #head = 0
  #length = 0

  constructor(initialCapacity = 16) {
    this.#items = new Array(Math.max(2, initialCapacity))
  }

  get length(): number {
    return this.#length
  }

  /** The oldest item, without removing it. */
  peek(): T | undefined {
    return this.#length === 0 ? undefined : this.#items[this.#head]
  }

  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow()
    this.#items[(this.#head + this.#length) % this.#items.length] = item
    this.#length++
  }

  /** Puts `item` back in front (a failed send goes first again). */
  unshift(item: T): void {
    if (this.#length === this.#items.length) this.#grow()
    this.#head = (this.#head - 1 + this.#items.length) % this.#items.length
    this.#items[this.#head] = item
    this.#length++
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined
    const item = this.#items[this.#head]
    this.#items[this.#head] = undefined
    this.#head = (this.#head + 1) % this.#items.length
    this.#length--
    return item
  }

  clear(): void {
    this.#items = new Array(16)
    this.#head = 0
    this.#length = 0
  }

  #grow(): void {
    const bigger: (T | undefined)[] = new Array(this.#items.length * 2)
    for (let i = 0; i < this.#length; i++) {
      bigger[i] = this.#items[(this.#head + i) % this.#items.length]
    }
    this.#items = bigger
    this.#head = 0
  }
}
