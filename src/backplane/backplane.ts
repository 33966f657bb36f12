/**
 * The broker backplane: nodes that share a Redis (or Redis Cluster) instead of listing each
 * other. A message accepted by a node — posted to it, or relayed to it by a `cluster` peer —
 * is appended to its instance's history stream and published once; every node subscribed
 * to it delivers it to its own sockets (and keeps it for replay), and hands it to nobody
 * else. Nodes tell copies apart by `uniqueID` (the same dedup memory as the relay), so
 * delivery stays exactly-once when the relay and the backplane both carry a message.
 *
 * Interest-aware (interest.ts): a node subscribes only to the instances (or subscriber ids)
 * its sockets have. Never in the caller's way: forward() only queues (outbox.ts), a pump
 * publishes with a bounded window, and while the broker cannot be reached the outbox keeps
 * what it can and publishes it when it is back; receivers then deliver it live only to
 * sockets that were open when it was posted.
 *
 * Shared history: a replay that reaches back before this node started hearing the
 * connection's channels is served from the broker's stream (see replay()). Each instance's
 * stream has an epoch; a different one after a reconnect means the broker lost it, which
 * /status/ says.
 */
import { type AdminMessage, parseMessage } from '../admin/body.ts'
import type { BackplaneOptions as BackplaneSettings, Config } from '../config/schema.ts'
import { RequestError } from '../errors.ts'
import { generateUniqueId } from '../fingerprint.ts'
import type { Connection } from '../hub/connection.ts'
import { outboundFromText } from '../hub/outbound.ts'
import type { LogLimiter } from '../log-limiter.ts'
import { Histogram } from '../metrics/histogram.ts'
import type { Clock, Logger, Outbound, Scheduler } from '../ports.ts'
import type { Timers } from '../relay/timers.ts'
import type { Forwarded, Forwarder, Tidings } from '../tidings.ts'
import type { Broker, BrokerFactory } from './broker.ts'
import { decodeEnvelope, encodeEnvelope } from './envelope.ts'
import { Interest } from './interest.ts'
import { brokerNames, type Names } from './names.ts'
import { Outbox, type OutboxEntry } from './outbox.ts'

export type BackplaneState = 'connecting' | 'up' | 'down' | 'closed'

const decoder = new TextDecoder()

export interface BackplaneOptions {
  /** The configuration in force (read on every use: a reload swaps it). */
  config: () => Config
  broker: BrokerFactory
  tidings: Tidings
  clock: Clock
  logger: Logger
  log: LogLimiter
  scheduler: Scheduler
  timers: Timers
}

/** Backplane counters, for /status/, /stats.json and /metrics. */
export interface BackplaneStats {
  published: number
  received: number
  /** Broker payloads that were not a usable message (counted, logged rate-limited). */
  rejected: number
  /** This node's own messages coming back on its subscriptions. */
  echoes: number
  reconnects: number
  /** Publishes that failed and were retried. */
  failures: number
  /** Replays served from the broker's history. */
  sharedReplays: number
  /** Messages read back from the streams after an outage (duplicates included). */
  caughtUp: number
}

/** Publishes in flight at once. */
const WINDOW = 64
/** A socket's channels stay subscribed this long after it leaves (a page reload). */
const LINGER_MS = 5000
/** Channels that may linger at once; past it the longest-lingering is unsubscribed at once. */
const LINGER_MAX = 10_000
/** Below this a message went out as fast as publishes do: no queue time is sent. */
const QUEUED_MIN_MS = 100
/** Each instance's stream is trimmed by age at most this often (ms). */
const TRIM_EVERY_MS = 5000
/** After a publish failed while the connection still looked up, the next try (ms). */
const RETRY_MS = 500
/** Stream entries read per command when a replay needs the broker's history. */
const PAGE = 512
/** After an outage, the streams are read back from this long before it began (ms). */
const CATCH_UP_SLACK_MS = 1000

/** One history entry read back from the broker, checked like any relayed body. */
interface SharedEntry {
  readonly id: string | undefined
  readonly subscribers: readonly string[]
  readonly message: Outbound
  /** The node that published it. */
  readonly from: string
  /** When it was first accepted, on this node's clock (appended, less its queue time). */
  readonly at: number
  readonly parsed: AdminMessage
}

/** What this node knows of one instance's stream. */
interface StreamState {
  /** The epoch claimed or found; undefined until the first claim answered. */
  epoch: string | undefined
  /** Clock ms when the broker was found to have lost this history, if it was. */
  lostAt: number | undefined
  /** Running mean of payload bytes, to bound the stream's bytes by `history.bytes`. */
  meanBytes: number
  lastTrim: number
}

export class Backplane implements Forwarder {
  state: BackplaneState = 'connecting'
  /** Why the broker was last unreachable, while it is. */
  lastError: string | null = null
  readonly stats: BackplaneStats = {
    published: 0,
    received: 0,
    rejected: 0,
    echoes: 0,
    reconnects: 0,
    failures: 0,
    sharedReplays: 0,
    caughtUp: 0,
  }
  /** Seconds from accepting a message to the broker's acknowledgement of its publish. */
  readonly latency = new Histogram()
  /** Publishes per shard (the broker's label for the node a publish went to). */
  readonly shards = new Map<string, number>()
  readonly outbox: Outbox
  readonly interest: Interest
  readonly names: Names
  readonly #options: BackplaneOptions
  readonly #broker: Broker
  readonly #streams = new Map<string, StreamState>()
  readonly #fetches = new Map<string, { since: number; entries: Promise<SharedEntry[]> }>()
  #inFlight = 0
  #paused = false
  /** When the broker connection was last lost (Clock ms). */
  #downSince: number | undefined
  /** Broker clock minus this clock, ms (measured at every connect). */
  #offset = 0
  #everUp = false

  constructor(options: BackplaneOptions) {
    this.#options = options
    const settings = this.settings
    this.names = brokerNames(settings.prefix)
    this.outbox = new Outbox(() => this.settings)
    this.#broker = options.broker({
      message: (channel, payload) => this.#receive(channel, payload),
      down: (reason) => this.#down(reason),
      up: () => void this.#up(),
    })
    this.interest = new Interest({
      broker: this.#broker,
      clock: options.clock,
      scheduler: options.scheduler,
      timers: options.timers,
      lingerMs: LINGER_MS,
      lingerMax: LINGER_MAX,
      failed: (reason) =>
        options.log.warn('backplane:subscribe', `Backplane subscribe failed: ${reason}`),
    })
  }

  get settings(): BackplaneSettings {
    return this.#options.config().backplane as BackplaneSettings
  }

  /**
   * Connects; rejects (leaving nothing open) when the broker cannot be used, with the
   * broker's reason. A node that fails here does not start.
   */
  async start(): Promise<void> {
    try {
      await this.#broker.connect()
      this.#offset = (await this.#broker.time()) - this.#options.clock.now()
    } catch (error) {
      await this.#broker.close().catch(() => {})
      this.state = 'closed'
      throw error
    }
    this.state = 'up'
    this.#everUp = true
    this.interest.up()
    this.#options.logger.log(`Backplane connected (${this.describe()}).`)
  }

  /** `redis 127.0.0.1:6379` or `redis-cluster 3 nodes`, for log lines (no credentials). */
  describe(): string {
    const settings = this.settings
    if (settings.type === 'redis-cluster') {
      return `redis-cluster, ${settings.nodes?.length ?? 0} seed nodes`
    }
    try {
      const url = new URL(settings.url as string)
      return `redis ${url.host}`
    } catch {
      return 'redis'
    }
  }

  // --- publishing ---------------------------------------------------------------------

  forward(message: Forwarded): void {
    if (this.state === 'closed') return
    const dropped = this.outbox.push({
      instance: message.instance,
      body: message.body,
      subscribers: message.subscribers,
      at: message.at,
    })
    if (dropped > 0) {
      this.#options.log.warn(
        'backplane:dropped',
        `Backplane buffer full ("backplane.buffer"/"backplane.bufferBytes"): dropped the ${dropped} oldest unpublished messages (${this.outbox.dropped} in all).`
      )
    }
    this.#pump()
  }

  #pump(): void {
    if (this.state !== 'up' || this.#paused) return
    const cutoff = this.#options.clock.now() - this.#options.config().history.age
    const expired = this.outbox.expire(cutoff)
    if (expired > 0) {
      this.#options.log.warn(
        'backplane:expired',
        `Backplane: dropped ${expired} unpublished messages older than "history.age"; they could no longer be replayed.`
      )
    }
    while (this.#inFlight < WINDOW && this.outbox.length > 0) {
      void this.#publish(this.outbox.shift() as OutboxEntry)
    }
  }

  async #publish(entry: OutboxEntry): Promise<void> {
    const { clock } = this.#options
    const names = this.names
    const started = clock.now()
    const queued = started - entry.at
    const payload = encodeEnvelope({
      from: this.#options.tidings.fingerprint,
      instance: entry.instance,
      queuedMs: queued >= QUEUED_MIN_MS ? queued : 0,
      body: entry.body,
    })
    this.#inFlight++
    try {
      const stream = await this.#stream(entry.instance)
      stream.meanBytes =
        stream.meanBytes === 0
          ? payload.byteLength
          : stream.meanBytes * 0.9 + payload.byteLength * 0.1
      const channels =
        this.settings.routing === 'instance'
          ? [names.instanceChannel(entry.instance)]
          : [...new Set(entry.subscribers)].map((id) => names.subscriberChannel(entry.instance, id))
      const [, ...shards] = await Promise.all([
        this.#broker.append(names.stream(entry.instance), payload, this.#maxLen(stream)),
        ...channels.map((channel) => this.#broker.publish(channel, payload)),
      ])
      for (const shard of shards) this.shards.set(shard, (this.shards.get(shard) ?? 0) + 1)
      this.stats.published++
      this.latency.observe((clock.now() - entry.at) / 1000)
      this.#trimLater(entry.instance, stream)
    } catch (error) {
      this.stats.failures++
      this.outbox.unshift(entry)
      this.#retryLater((error as Error).message)
    } finally {
      this.#inFlight--
    }
    this.#pump()
  }

  /** A failed publish: pause, and try again shortly (or when the broker says it is back). */
  #retryLater(reason: string): void {
    this.lastError = reason
    this.#options.log.warn('backplane:publish', `Backplane publish failed: ${reason}`)
    if (this.#paused) return
    this.#paused = true
    this.#options.timers.setTimeout(() => {
      this.#paused = false
      this.#pump()
    }, RETRY_MS)
  }

  /** About as many entries as `history.bytes` holds at the stream's mean size, at most `history.size`. */
  #maxLen(stream: StreamState): number {
    const { size, bytes } = this.#options.config().history
    return Math.max(1, Math.min(size, Math.floor(bytes / Math.max(1, stream.meanBytes))))
  }

  #trimLater(instance: string, stream: StreamState): void {
    const now = this.#options.clock.now()
    if (now - stream.lastTrim < TRIM_EVERY_MS) return
    stream.lastTrim = now
    const before = now + this.#offset - this.#options.config().history.age
    this.#broker.trim(this.names.stream(instance), before).catch(() => {})
  }

  /** The instance's stream state, its epoch claimed on first use. */
  async #stream(instance: string): Promise<StreamState> {
    let stream = this.#streams.get(instance)
    if (!stream) {
      stream = { epoch: undefined, lostAt: undefined, meanBytes: 0, lastTrim: 0 }
      this.#streams.set(instance, stream)
    }
    if (stream.epoch === undefined) {
      stream.epoch = await this.#broker.claim(this.names.epoch(instance), generateUniqueId())
    }
    return stream
  }

  /**
   * Learns the epoch of an instance this node hears, replays or has sockets for, so that a
   * change after an outage can be noticed (it must be known before the outage).
   */
  learn(instance: string): void {
    this.#know(instance)
  }

  #know(instance: string): void {
    if (this.#streams.get(instance)?.epoch !== undefined) return
    this.#stream(instance).catch(() => {})
  }

  /** After a reconnect: an instance whose epoch changed lost its history on the broker. */
  async #checkEpochs(): Promise<void> {
    for (const [instance, stream] of this.#streams) {
      if (stream.epoch === undefined) continue
      const epoch = await this.#broker.claim(this.names.epoch(instance), generateUniqueId())
      if (epoch === stream.epoch) continue
      stream.epoch = epoch
      stream.lostAt = this.#options.clock.now()
      this.#options.logger.warn(
        `Backplane: the broker lost the history of instance "${instance}" (it restarted without persistence?); replays reach back only to what this node kept.`
      )
    }
  }

  // --- receiving ----------------------------------------------------------------------

  #receive(_channel: string, payload: Uint8Array): void {
    const { tidings, clock, log } = this.#options
    const envelope = decodeEnvelope(payload)
    if (typeof envelope === 'string') {
      this.#reject(`a payload with ${envelope}`)
      return
    }
    if (envelope.from === tidings.fingerprint) {
      this.stats.echoes++
      return
    }
    const { limits } = this.#options.config()
    if (envelope.body.byteLength > limits.bodyBytes) {
      this.#reject(`a message larger than "limits.bodyBytes" for "${envelope.instance}"`)
      return
    }
    try {
      const message = parseMessage(envelope.body, limits.bodyDepth)
      const postedAt = envelope.queuedMs > 0 ? clock.now() - envelope.queuedMs : undefined
      this.stats.received++
      this.#know(envelope.instance)
      tidings.ingest(envelope.instance, message, { postedAt, local: true })
    } catch (error) {
      if (!(error instanceof RequestError)) throw error
      if (error.status === 503) {
        // Refused here for a budget (too_many_instances), already counted and logged.
        log.log(
          'backplane:refused',
          `Backplane message for "${envelope.instance}" refused: ${error.message}`
        )
        return
      }
      this.#reject(`a message for "${envelope.instance}" that is not valid: ${error.message}`)
    }
  }

  #reject(what: string): void {
    this.stats.rejected++
    this.#options.log.warn('backplane:rejected', `Backplane: ignored ${what}.`)
  }

  // --- connection state ---------------------------------------------------------------

  #down(reason: string): void {
    if (this.state === 'closed') return
    this.lastError = reason
    if (this.state === 'up') this.#downSince = this.#options.clock.now()
    if (this.state === 'up') {
      this.#options.logger.warn(
        `Backplane connection lost (${reason}); delivering locally and keeping up to ${this.settings.buffer} messages to publish when it is back.`
      )
    }
    this.state = 'down'
    this.interest.down()
  }

  async #up(): Promise<void> {
    if (this.state === 'closed' || !this.#everUp) return
    const wasDown = this.state === 'down'
    try {
      this.#offset = (await this.#broker.time()) - this.#options.clock.now()
      await this.#checkEpochs()
    } catch (error) {
      this.#down((error as Error).message)
      return
    }
    this.state = 'up'
    this.lastError = null
    if (wasDown) {
      this.stats.reconnects++
      this.#options.logger.log(
        `Backplane connection is back; publishing ${this.outbox.length} buffered messages.`
      )
    }
    this.interest.up()
    this.#pump()
    if (wasDown && this.#downSince !== undefined) void this.#catchUp(this.#downSince)
  }

  /**
   * After an outage: what the other nodes published meanwhile (or just before this node's
   * subscriptions were back) is in the streams; deliver it now, to the sockets that were
   * open when it was posted. Messages that did arrive are dropped as duplicates.
   */
  async #catchUp(since: number): Promise<void> {
    const { tidings, config, clock } = this.#options
    const { history, relay } = config()
    // Not beyond what can be replayed, nor beyond what the dedup memory still knows.
    const from = Math.max(
      since - CATCH_UP_SLACK_MS,
      clock.now() - Math.min(history.age, relay.dedupAge)
    )
    for (const instance of tidings.hub.instances()) {
      if (instance.active === 0) continue
      try {
        for (const entry of await this.#read(instance.name, from)) {
          if (entry.from === tidings.fingerprint) continue
          this.stats.caughtUp++
          try {
            tidings.ingest(instance.name, entry.parsed, { postedAt: entry.at, local: true })
          } catch {
            // Refused here for a budget (counted and logged where it was decided).
          }
        }
      } catch (error) {
        this.#options.log.warn(
          'backplane:catch-up',
          `Backplane: could not read what "${instance.name}" missed during the outage: ${(error as Error).message}`
        )
      }
    }
  }

  // --- interest -----------------------------------------------------------------------

  /** The channels a connection's messages come on. */
  channelsOf(connection: Connection): string[] {
    const instance = connection.instance.name
    if (this.settings.routing === 'instance') return [this.names.instanceChannel(instance)]
    return [...connection.subs].map((id) => this.names.subscriberChannel(instance, id))
  }

  // --- shared history -----------------------------------------------------------------

  /**
   * A replay this node's history cannot serve alone — it has not been hearing all of the
   * connection's channels since `since` — served from the broker's stream: the stream's
   * entries for the connection's ids, then what only this node has (not yet published),
   * each message once, leaving out what went to the connection live after `requestedAt`.
   * Undefined when the local history is enough, or the broker is not reachable (then the
   * local history is all there is).
   */
  replay(
    connection: Connection,
    since: number,
    requestedAt: number
  ): Promise<readonly Outbound[]> | undefined {
    if (this.state !== 'up') return undefined
    const channels = this.channelsOf(connection)
    const coverage = this.interest.coverage(channels)
    if (coverage !== undefined && coverage <= since) return undefined
    this.stats.sharedReplays++
    return this.#sharedReplay(connection, channels, since, requestedAt)
  }

  async #sharedReplay(
    connection: Connection,
    channels: readonly string[],
    since: number,
    requestedAt: number
  ): Promise<readonly Outbound[]> {
    // First hear everything from now on, then read what came before: nothing falls between.
    await this.interest.ready(channels, this.settings.commandTimeout)
    this.#know(connection.instance.name)
    const shared = await this.#fetch(connection.instance.name, since)
    const { history } = connection.instance
    const wentLive = new Set<string>()
    const local: { id: string | undefined; message: Outbound }[] = []
    for (const entry of history.since(since)) {
      if (!entry.subscribers.some((id) => connection.subs.has(id))) continue
      if (entry.at > requestedAt) {
        if (entry.id !== undefined) wentLive.add(entry.id)
      } else {
        local.push({ id: entry.id, message: entry.message })
      }
    }
    const seen = new Set<string>()
    const messages: Outbound[] = []
    for (const entry of shared) {
      if (!entry.subscribers.some((id) => connection.subs.has(id))) continue
      if (entry.id !== undefined) {
        if (seen.has(entry.id) || wentLive.has(entry.id)) continue
        seen.add(entry.id)
      }
      messages.push(entry.message)
    }
    for (const entry of local) {
      if (entry.id !== undefined && seen.has(entry.id)) continue
      messages.push(entry.message)
    }
    return messages
  }

  /**
   * The instance's stream since `since` (this clock), at most `history.size` entries and
   * about `history.bytes`. Replays asked for while one read is running share it.
   */
  #fetch(instance: string, since: number): Promise<SharedEntry[]> {
    const running = this.#fetches.get(instance)
    if (running && running.since <= since) return running.entries
    const entries = this.#read(instance, since).finally(() => {
      if (this.#fetches.get(instance)?.entries === entries) this.#fetches.delete(instance)
    })
    this.#fetches.set(instance, { since, entries })
    return entries
  }

  async #read(instance: string, since: number): Promise<SharedEntry[]> {
    const { size, bytes } = this.#options.config().history
    const { limits } = this.#options.config()
    const stream = this.names.stream(instance)
    const entries: SharedEntry[] = []
    let total = 0
    let start = String(Math.max(0, Math.floor(since + this.#offset)))
    while (entries.length < size && total < bytes) {
      const page = await this.#broker.range(stream, start, Math.min(PAGE, size - entries.length))
      for (const { id, payload } of page) {
        total += payload.byteLength
        const envelope = decodeEnvelope(payload)
        if (typeof envelope === 'string' || envelope.body.byteLength > limits.bodyBytes) continue
        try {
          const parsed = parseMessage(envelope.body, limits.bodyDepth)
          entries.push({
            id: parsed.uniqueId,
            subscribers: parsed.subscribers,
            message: outboundFromText(decoder.decode(envelope.body)),
            from: envelope.from,
            at: Number.parseInt(id, 10) - this.#offset - envelope.queuedMs,
            parsed,
          })
        } catch {
          // Not a message (checked like any relayed body): not replayed.
        }
      }
      const last = page[page.length - 1]
      if (!last || page.length < PAGE) break
      start = `(${last.id}`
    }
    return entries
  }

  // --- status and shutdown ------------------------------------------------------------

  /**
   * The broker's word on an instance's history: `ok`, or `lost` (since when), and its epoch
   * (null until this node has learned it).
   */
  historyOf(instance: string): {
    state: 'ok' | 'lost'
    lostAt: number | null
    epoch: string | null
  } {
    const stream = this.#streams.get(instance)
    const epoch = stream?.epoch ?? null
    const lostAt = stream?.lostAt
    return lostAt === undefined
      ? { state: 'ok', lostAt: null, epoch }
      : { state: 'lost', lostAt, epoch }
  }

  /** Publishes what is buffered (at most `flushMs`), then closes the broker connections. */
  async close(flushMs: number): Promise<void> {
    if (this.state === 'closed') return
    const deadline = this.#options.clock.now() + flushMs
    while (
      this.state === 'up' &&
      (this.outbox.length > 0 || this.#inFlight > 0) &&
      this.#options.clock.now() < deadline
    ) {
      await new Promise<void>((resolve) => this.#options.timers.setTimeout(resolve, 10))
    }
    this.state = 'closed'
    this.interest.clear()
    await this.#broker.close().catch(() => {})
  }
}
