/**
 * A bounded, per-instance message history for `replay`: at most `size` messages,
 * `bytes` serialised bytes, and nothing older than `age` ms. Each message is held once.
 */
import type { HistoryOptions } from '../config/schema.ts'
import type { Outbound } from '../ports.ts'

export interface HistoryEntry {
  readonly at: number
  readonly subscribers: readonly string[]
  readonly message: Outbound
}

export class History {
  #entries: HistoryEntry[] = []
  #head = 0
  #bytes = 0

  constructor(private readonly options: HistoryOptions) {}

  get size(): number {
    return this.#entries.length - this.#head
  }

  get bytes(): number {
    return this.#bytes
  }

  /** Timestamp of the oldest entry, or undefined when empty. */
  get oldest(): number | undefined {
    return this.#entries[this.#head]?.at
  }

  /** The most recently appended entry still kept (the Workers adapter persists it), or undefined. */
  get newest(): HistoryEntry | undefined {
    return this.size > 0 ? this.#entries[this.#entries.length - 1] : undefined
  }

  append(entry: HistoryEntry, now: number): void {
    if (this.options.size === 0 || this.options.age === 0) return
    this.#entries.push(entry)
    this.#bytes += entry.message.bytes.byteLength
    this.trim(now)
  }

  /** Drops entries beyond the size and byte bounds and those older than the age bound. */
  trim(now: number): void {
    const { size, age, bytes } = this.options
    const cutoff = now - age
    while (this.size > 0) {
      const first = this.#entries[this.#head] as HistoryEntry
      if (this.size <= size && this.#bytes <= bytes && first.at >= cutoff) break
      this.#bytes -= first.message.bytes.byteLength
      this.#head++
    }
    // Compact once the dead prefix dominates, so trimming stays O(1) amortised.
    if (this.#head > 64 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head)
      this.#head = 0
    }
  }

  /** Entries no older than `since`, oldest first. */
  *since(since: number): Iterable<HistoryEntry> {
    for (let i = this.#head; i < this.#entries.length; i++) {
      const entry = this.#entries[i] as HistoryEntry
      if (entry.at >= since) yield entry
    }
  }
}
