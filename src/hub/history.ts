/**
 * Replay history. Each instance keeps a bounded list (at most `size` messages, `bytes` of
 * cost, nothing older than `age` ms); one ledger per hub also bounds all instances together
 * (`limits.historyBytes`), dropping the oldest message anywhere first. A message's cost is
 * what keeping it holds: its serialised bytes, its subscriber ids and a fixed overhead.
 */
import type { HistoryOptions } from '../config/schema.ts'
import type { Outbound } from '../ports.ts'
import { Deque } from '../util/deque.ts'

/** Bytes charged per entry besides its message and ids (the entry and its array). */
const ENTRY_OVERHEAD = 96

export interface HistoryEntry {
  readonly at: number
  readonly subscribers: readonly string[]
  readonly message: Outbound
  /** The message's `uniqueID`, when known (it tells a shared history's copy from this one). */
  readonly id?: string | undefined
}

export function entryCost(entry: HistoryEntry): number {
  let cost = ENTRY_OVERHEAD + entry.message.bytes.byteLength
  for (const id of entry.subscribers) cost += 16 + 2 * id.length
  return cost
}

/** An entry as kept: its history, what it costs, and whether it is gone (trimmed or evicted). */
class Kept implements HistoryEntry {
  readonly cost: number
  /** Counted by the ledger (false for an entry trimmed before it could be). */
  charged = false
  dead = false

  constructor(
    readonly history: History,
    readonly at: number,
    readonly subscribers: readonly string[],
    readonly message: Outbound,
    readonly id: string | undefined
  ) {
    this.cost = entryCost(this)
  }
}

/** The bound on all histories together. Evictions are reported through `onEvict`. */
export class HistoryLedger {
  /** Cost of every live entry of every history. */
  bytes = 0
  #live = 0
  readonly #order = new Deque<Kept>()

  constructor(
    private readonly limit: () => number,
    private readonly onEvict: (count: number) => void = () => {}
  ) {}

  /** Records a new entry and evicts the oldest anywhere while over the limit. */
  charge(entry: Kept): void {
    entry.charged = true
    this.#order.push(entry)
    this.bytes += entry.cost
    this.#live++
    if (this.bytes <= this.limit()) {
      this.#compact()
      return
    }
    const limit = this.limit()
    let evicted = 0
    while (this.bytes > limit && this.#live > 0) {
      const head = this.#order.shift() as Kept
      if (head.dead) continue
      head.history.dropOldest()
      evicted++
    }
    this.#compact()
    if (evicted > 0) this.onEvict(evicted)
  }

  /** A charged entry left its history (trimmed or evicted). */
  release(entry: Kept): void {
    this.bytes -= entry.cost
    this.#live--
  }

  /** Drops dead entries from the front, and rebuilds the order when they dominate it. */
  #compact(): void {
    for (let head = this.#order.peek(); head?.dead; head = this.#order.peek()) {
      this.#order.shift()
    }
    if (this.#order.length > 2 * this.#live + 1024) {
      const items: Kept[] = []
      for (let item = this.#order.shift(); item; item = this.#order.shift()) {
        if (!item.dead) items.push(item)
      }
      for (const item of items) this.#order.push(item)
    }
  }
}

export class History {
  #entries: Kept[] = []
  #head = 0
  #bytes = 0

  constructor(
    private options: HistoryOptions,
    private readonly ledger: HistoryLedger = new HistoryLedger(() => Number.POSITIVE_INFINITY)
  ) {}

  get size(): number {
    return this.#entries.length - this.#head
  }

  /** Cost of the entries kept (see entryCost). */
  get bytes(): number {
    return this.#bytes
  }

  /** Timestamp of the oldest entry, or undefined when empty. */
  get oldest(): number | undefined {
    return this.#entries[this.#head]?.at
  }

  /** Appends `entry` and trims; returns it as kept, or undefined when it is not kept at all. */
  append(entry: HistoryEntry, now: number): HistoryEntry | undefined {
    if (this.options.size === 0 || this.options.age === 0) return undefined
    const kept = new Kept(this, entry.at, entry.subscribers, entry.message, entry.id)
    this.#entries.push(kept)
    this.#bytes += kept.cost
    this.trim(now)
    if (!kept.dead) this.ledger.charge(kept)
    return kept.dead ? undefined : kept
  }

  /** New bounds (a reload); applied from the next append or trim. */
  reconfigure(options: HistoryOptions): void {
    this.options = options
  }

  /** Drops entries beyond the size and byte bounds and those older than the age bound. */
  trim(now: number): void {
    const { size, age, bytes } = this.options
    const cutoff = now - age
    while (this.size > 0) {
      const first = this.#entries[this.#head] as Kept
      if (this.size <= size && this.#bytes <= bytes && first.at >= cutoff) break
      this.dropOldest()
    }
  }

  /** Drops the oldest entry (the ledger calls this to bound all histories together). */
  dropOldest(): void {
    const first = this.#entries[this.#head]
    if (!first) return
    this.#entries[this.#head] = undefined as unknown as Kept
    this.#head++
    this.#bytes -= first.cost
    first.dead = true
    if (first.charged) this.ledger.release(first)
    // Compact once the dead prefix dominates, so trimming stays O(1) amortised.
    if (this.#head > 64 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head)
      this.#head = 0
    }
  }

  /** Entries no older than `since`, oldest first. */
  *since(since: number): Iterable<HistoryEntry> {
    for (let i = this.#head; i < this.#entries.length; i++) {
      const entry = this.#entries[i] as Kept
      if (entry.at >= since) yield entry
    }
  }
}
