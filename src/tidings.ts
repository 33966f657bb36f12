/**
 * One tidings node, runtime-free: the hub, the fingerprint, the counters and the path a
 * POSTed message takes (check touched → stamp → serialise once → deliver → relay).
 * Adapters build one per process (Node) or per Durable Object (Workers).
 */
import type { AdminMessage } from './admin/body.ts'
import { ensureUniqueId } from './admin/publish.ts'
import type { FrameContext } from './client/frames.ts'
import type { Config } from './config/schema.ts'
import { RequestError } from './errors.ts'
import { generateFingerprint } from './fingerprint.ts'
import { Hub, type HubEvents, type PublishExtras } from './hub/hub.ts'
import { outboundFromValue } from './hub/outbound.ts'
import { type LimitStats, newLimitStats } from './limit-stats.ts'
import { LogLimiter } from './log-limiter.ts'
import type { Clock, Logger, Outbound, Scheduler } from './ports.ts'
import { DedupCache, type DedupOptions } from './relay/dedup.ts'
import { dedupKey } from './relay/envelope.ts'

/** Aphlict's status `version`; Phorge shows it on its services page. */
export const STATUS_VERSION = 7

export interface TidingsOptions {
  config: Pick<Config, 'history' | 'limits'>
  clock: Clock
  logger: Logger
  scheduler: Scheduler
  /** Defaults to a fresh random one, as Aphlict generates per process. */
  fingerprint?: string
  /** Bounds of the duplicate-message memory; defaults to 100,000 identities for 120 s. */
  dedup?: DedupOptions
  /** Where rate-limited lines go; one is made on `logger` when absent. */
  log?: LogLimiter
  /** Told what the hub keeps and whom it accepts and loses (see HubEvents). */
  events?: HubEvents
}

/** An accepted message, as it is handed on to the rest of the cluster. */
export interface Forwarded {
  readonly instance: string
  /** The JSON to send on (UTF-8, `touched` stamped). */
  readonly body: Uint8Array
  readonly touched: readonly string[]
  readonly subscribers: readonly string[]
  /** When the message was first accepted (Clock ms). */
  readonly at: number
}

/** Hands accepted messages on to the rest of the cluster (src/relay, src/backplane). */
export interface Forwarder {
  /** Must not block the caller. */
  forward(message: Forwarded): void
}

/**
 * Other holders of this node's sockets (Node: the worker processes of `processes`): every
 * message this node delivers, from wherever it came, is delivered by them too.
 */
export interface Mirror {
  deliver(
    instance: string,
    subscribers: readonly string[],
    message: Outbound,
    extras: PublishExtras
  ): void
}

/** How a message reached this node (see Tidings.ingest). */
export interface IngestOptions {
  /**
   * For a message that reached this node late (a relay that waited in a queue): when it
   * was first accepted. It is then delivered live only to sockets that were open by then;
   * the others find it with `replay`.
   */
  postedAt?: number | undefined
  /** From the backplane: delivered here only, not handed on again. */
  local?: boolean
}

/** Counters of rejected input, for metrics. */
export interface RejectStats {
  badBodies: number
  badFrames: number
}

/** `GET /status/` for one instance: Aphlict's keys in Aphlict's order, then tidings' own. */
export interface StatusBody {
  instance: string
  uptime: number
  'clients.active': number
  'clients.total': number
  'messages.in': number
  'messages.out': number
  version: number
  'history.size': number
  'history.age': number | null
  [extra: string]: unknown
}

export class Tidings {
  readonly fingerprint: string
  readonly hub: Hub
  readonly startedAt: number
  readonly rejected: RejectStats = { badBodies: 0, badFrames: 0 }
  /** Refusals and closes per limit (connections, frames, subscriptions, bodies). */
  readonly limited: LimitStats = newLimitStats()
  readonly frameContext: FrameContext
  /** Where accepted messages go besides this node's sockets (relay, backplane). */
  readonly forwarders: Forwarder[] = []
  /** Who delivers every message to this node's sockets besides its own hub (workers). */
  readonly mirrors: Mirror[] = []
  /** Messages dropped because this node had already accepted them (same uniqueID). */
  duplicates = 0
  /** Messages dropped because they already carried this node's fingerprint (a relay loop). */
  loops = 0
  readonly dedup: DedupCache
  /** Rate-limited log lines, for anything a remote party can trigger. */
  readonly log: LogLimiter
  #config: Pick<Config, 'history' | 'limits'>

  constructor(readonly options: TidingsOptions) {
    const { config, clock, logger, scheduler } = options
    this.#config = config
    this.fingerprint = options.fingerprint ?? generateFingerprint()
    this.startedAt = clock.now()
    this.log = options.log ?? new LogLimiter(logger, clock)
    this.dedup = new DedupCache(options.dedup ?? { size: 100_000, age: 120_000 })
    this.hub = new Hub({
      clock,
      log: this.log,
      scheduler,
      limits: config.limits,
      history: config.history,
      stats: this.limited,
      ...(options.events ? { events: options.events } : {}),
    })
    const self = this
    this.frameContext = {
      hub: this.hub,
      log: this.log,
      clock,
      limited: this.limited,
      // Read on use, so a reload that changes them takes effect.
      get replayWindow() {
        return self.#config.history.age
      },
      get framesPerSecond() {
        return self.#config.limits.framesPerSecond
      },
      onBadFrame: () => {
        this.rejected.badFrames++
      },
    }
  }

  /**
   * Accepts a checked message for `instance`. A message that already carries this node's
   * fingerprint has been here before and is dropped (Aphlict's rule); so is one whose
   * `uniqueID` was accepted recently, which makes delivery exactly-once in any topology.
   * A message without a `uniqueID` gets a random one here, before it goes anywhere.
   * Returns whether it was delivered.
   * @throws RequestError 503 `too_many_instances` when `instance` would be one too many.
   */
  /** The history and limits in force. */
  get config(): Pick<Config, 'history' | 'limits'> {
    return this.#config
  }

  /** New history bounds and limits (a reload): swapped in, never changed in place. */
  reconfigure(config: Pick<Config, 'history' | 'limits'>): void {
    this.#config = config
    this.hub.reconfigure(config.limits, config.history)
  }

  ingest(instance: string, message: AdminMessage, options: IngestOptions = {}): boolean {
    const { logger, clock } = this.options
    const config = this.#config
    if (logger.tracing) {
      logger.trace(`Received notification (${instance}): ${JSON.stringify(message.value)}`)
    }
    if (!this.hub.canHold(instance)) {
      this.limited.instances++
      this.log.warn(
        'refused:too_many_instances',
        `Refused a message for new instance "${instance}": ${this.hub.count} instances are live ("limits.instances").`
      )
      throw new RequestError(
        'too_many_instances',
        503,
        `This server holds as many instances as it may (${config.limits.instances}, "limits.instances"); retry later.`,
        30
      )
    }
    this.hub.instance(instance).messagesIn++
    if (message.touched.includes(this.fingerprint)) {
      this.loops++
      return false
    }
    const { value } = message
    ensureUniqueId(message)
    // An id drawn here is new to everyone, and a copy that comes back carries this node's
    // fingerprint: only ids that arrived with the message need remembering.
    const key = message.drawn ? undefined : dedupKey(instance, message.uniqueId as string)
    if (key !== undefined && !this.dedup.add(key, clock.now())) {
      this.duplicates++
      return false
    }
    try {
      const touched = [...message.touched, this.fingerprint]
      value.touched = touched
      const outbound = outboundFromValue(value)
      const { postedAt } = options
      this.deliver(instance, message.subscribers, outbound, { postedAt, id: message.uniqueId })
      if (!options.local && this.forwarders.length > 0) {
        const forwarded: Forwarded = {
          instance,
          body: outbound.bytes,
          touched,
          subscribers: message.subscribers,
          at: postedAt ?? clock.now(),
        }
        for (const forwarder of this.forwarders) forwarder.forward(forwarded)
      }
    } catch (error) {
      // Not delivered: a corrected copy with the same uniqueID must not be taken for a duplicate.
      if (key !== undefined) this.dedup.forget(key)
      throw error
    }
    return true
  }

  /**
   * Delivers an accepted message to this node's sockets, wherever they are held (its hub
   * and its mirrors), and keeps it for replay.
   */
  deliver(
    instance: string,
    subscribers: readonly string[],
    message: Outbound,
    extras: PublishExtras
  ): void {
    this.hub.publish(instance, subscribers, message, extras)
    for (const mirror of this.mirrors) mirror.deliver(instance, subscribers, message, extras)
  }

  /**
   * A message another process of this node accepted (a restart's successor, during the
   * handover): delivered here unless this node has it already (same `uniqueID`).
   */
  deliverMirrored(
    instance: string,
    subscribers: readonly string[],
    message: Outbound,
    extras: PublishExtras
  ): boolean {
    const { id } = extras
    if (id !== undefined && !this.dedup.add(dedupKey(instance, id), this.options.clock.now())) {
      this.duplicates++
      return false
    }
    this.deliver(instance, subscribers, message, extras)
    return true
  }

  status(name: string): StatusBody {
    const now = this.options.clock.now()
    const instance = this.hub.find(name)
    instance?.history.trim(now)
    const oldest = instance?.history.oldest
    return {
      instance: name,
      uptime: now - this.startedAt,
      'clients.active': instance?.active ?? 0,
      'clients.total': instance?.total ?? 0,
      'messages.in': instance?.messagesIn ?? 0,
      'messages.out': instance?.messagesOut ?? 0,
      version: STATUS_VERSION,
      'history.size': instance?.history.size ?? 0,
      'history.age': oldest === undefined ? null : now - oldest,
    }
  }
}
