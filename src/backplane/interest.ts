/**
 * The channels this node subscribes to, following its sockets: a channel is subscribed
 * while at least one socket needs it, and for `lingerMs` after the last one left (a page
 * reload must not cost an unsubscribe and a subscribe). At most `lingerMax` channels linger:
 * past that the longest-lingering goes at once, so a client that subscribes to new ids and
 * drops them again cannot make the node (and the broker) hold channels nobody needs.
 * Subscribes and unsubscribes asked for in one turn go to the broker as one command each.
 *
 * Each channel knows since when this node has heard everything published on it (its
 * coverage): from the broker's acknowledgement of the subscription, reset when the
 * connection to the broker is lost. A replay reaching back before that needs the broker's
 * history (see Backplane.replay).
 */
import type { Clock, Scheduler } from '../ports.ts'
import type { TimerHandle, Timers } from '../relay/timers.ts'
import type { Broker } from './broker.ts'

/** After a failed subscribe or unsubscribe, the next try (ms). */
const RETRY_MS = 1000

interface Channel {
  refs: number
  /** Clock ms since which every message on it reached this node; undefined: not yet. */
  since: number | undefined
  /** The number of its current linger (see Lingering), or 0 while a socket needs it. */
  lingering: number
}

/** A channel no socket needs any more, until `until` (clock ms). */
interface Lingering {
  channel: string
  known: Channel
  seq: number
  until: number
}

export interface InterestOptions {
  broker: Broker
  clock: Clock
  scheduler: Scheduler
  timers: Timers
  lingerMs: number
  /** Channels that may linger at once. */
  lingerMax: number
  /** A subscribe or unsubscribe failed (the broker is unreachable or slow). */
  failed(reason: string): void
}

export class Interest {
  readonly #channels = new Map<string, Channel>()
  /**
   * Lingering channels in the order they began, which (the linger being the same for all) is
   * the order they end: one timer serves them all. Entries whose channel was needed again
   * are left in place and skipped (their `seq` no longer matches).
   */
  #queue: Lingering[] = []
  #head = 0
  #lingering = 0
  #seq = 0
  #timer: TimerHandle | undefined
  #subscribe = new Set<string>()
  #unsubscribe = new Set<string>()
  #flushing = false
  #up = false
  #waiters: (() => void)[] = []

  constructor(private readonly options: InterestOptions) {}

  /** Channels subscribed to or asked for. */
  get size(): number {
    return this.#channels.size
  }

  /** One more socket needs `channel`. */
  add(channel: string): void {
    const known = this.#channels.get(channel)
    if (known) {
      known.refs++
      if (known.lingering !== 0) {
        known.lingering = 0
        this.#lingering--
      }
      return
    }
    this.#channels.set(channel, { refs: 1, since: undefined, lingering: 0 })
    this.#unsubscribe.delete(channel)
    this.#subscribe.add(channel)
    this.#schedule()
  }

  /** One socket less needs `channel`. */
  remove(channel: string): void {
    const known = this.#channels.get(channel)
    if (!known || known.refs === 0) return
    known.refs--
    if (known.refs > 0) return
    known.lingering = ++this.#seq
    this.#lingering++
    const until = this.options.clock.now() + this.options.lingerMs
    this.#queue.push({ channel, known, seq: known.lingering, until })
    if (this.#lingering > this.options.lingerMax) this.#releaseNext(Number.POSITIVE_INFINITY)
    this.#arm()
  }

  /** Ends the longest linger if it is over by `now`; false when there is none such. */
  #releaseNext(now: number): boolean {
    while (this.#head < this.#queue.length) {
      const entry = this.#queue[this.#head] as Lingering
      const { known } = entry
      if (known.lingering !== entry.seq || this.#channels.get(entry.channel) !== known) {
        this.#head++
        continue
      }
      if (entry.until > now) return false
      this.#head++
      known.lingering = 0
      this.#lingering--
      this.#channels.delete(entry.channel)
      this.#subscribe.delete(entry.channel)
      this.#unsubscribe.add(entry.channel)
      this.#schedule()
      return true
    }
    return false
  }

  /** The timer for the longest linger; the queue's spent front is dropped now and then. */
  #arm(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
    const first = this.#queue[this.#head]
    if (this.#timer !== undefined || !first) return
    const wait = Math.max(0, first.until - this.options.clock.now())
    this.#timer = this.options.timers.setTimeout(() => {
      this.#timer = undefined
      const now = this.options.clock.now()
      while (this.#releaseNext(now));
      this.#arm()
    }, wait)
  }

  /**
   * Since when every message on all of `channels` has reached this node (the latest of
   * their coverages), or undefined when one of them is not covered at all.
   */
  coverage(channels: readonly string[]): number | undefined {
    let since = Number.NEGATIVE_INFINITY
    for (const channel of channels) {
      const known = this.#channels.get(channel)?.since
      if (known === undefined) return undefined
      if (known > since) since = known
    }
    return since
  }

  /** Resolves once all of `channels` are covered; rejects after `timeoutMs`. */
  ready(channels: readonly string[], timeoutMs: number): Promise<void> {
    if (this.coverage(channels) !== undefined) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.coverage(channels) === undefined) return
        this.options.timers.clearTimeout(timer)
        this.#waiters = this.#waiters.filter((waiter) => waiter !== check)
        resolve()
      }
      const timer = this.options.timers.setTimeout(() => {
        this.#waiters = this.#waiters.filter((waiter) => waiter !== check)
        reject(new Error(`not subscribed within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiters.push(check)
    })
  }

  /** The broker connection is up (again): subscriptions the broker restored count from now. */
  up(): void {
    this.#up = true
    const now = this.options.clock.now()
    let unsent = false
    for (const [channel, known] of this.#channels) {
      if (this.#subscribe.has(channel)) unsent = true
      else known.since = now
    }
    if (unsent) this.#schedule()
    this.#wake()
  }

  /** The broker connection is lost: nothing is covered until it is back. */
  down(): void {
    this.#up = false
    for (const known of this.#channels.values()) known.since = undefined
  }

  /** Forgets everything (shutdown). */
  clear(): void {
    if (this.#timer !== undefined) this.options.timers.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#queue = []
    this.#head = 0
    this.#lingering = 0
    this.#channels.clear()
    this.#subscribe.clear()
    this.#unsubscribe.clear()
  }

  #schedule(): void {
    if (this.#flushing || !this.#up) return
    this.#flushing = true
    this.options.scheduler.defer(() => void this.#flush())
  }

  async #flush(): Promise<void> {
    const subscribe = [...this.#subscribe]
    const unsubscribe = [...this.#unsubscribe]
    this.#subscribe.clear()
    this.#unsubscribe.clear()
    const { broker } = this.options
    try {
      if (unsubscribe.length > 0) await broker.unsubscribe(unsubscribe)
      if (subscribe.length > 0) {
        await broker.subscribe(subscribe)
        const now = this.options.clock.now()
        for (const channel of subscribe) {
          const known = this.#channels.get(channel)
          if (known && this.#up) known.since = now
        }
        this.#wake()
      }
    } catch (error) {
      // Asked for again a second later, or when the broker is back (up()).
      for (const channel of subscribe) if (this.#channels.has(channel)) this.#subscribe.add(channel)
      for (const channel of unsubscribe)
        if (!this.#channels.has(channel)) this.#unsubscribe.add(channel)
      this.options.failed((error as Error).message)
      this.options.timers.setTimeout(() => {
        this.#flushing = false
        this.#schedule()
      }, RETRY_MS)
      return
    }
    this.#flushing = false
    // More arrived meanwhile.
    if (this.#subscribe.size > 0 || this.#unsubscribe.size > 0) this.#schedule()
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter()
  }
}
