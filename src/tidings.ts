/**
 * One tidings node, runtime-free: the hub, the fingerprint, the counters and the path a
 * POSTed message takes (check touched → stamp → serialise once → deliver → relay).
 * Adapters build one per process (Node) or per Durable Object (Workers).
 */
import type { AdminMessage } from './admin/body.ts'
import type { FrameContext } from './client/frames.ts'
import type { Config } from './config/schema.ts'
import { generateFingerprint } from './fingerprint.ts'
import { Hub } from './hub/hub.ts'
import { outboundFromValue } from './hub/outbound.ts'
import { type LimitStats, newLimitStats } from './limit-stats.ts'
import type { Clock, Logger, Scheduler } from './ports.ts'
import { DedupCache, type DedupOptions } from './relay/dedup.ts'
import { identify, relayBody, takeOrigin } from './relay/envelope.ts'

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
  /**
   * Where origin-id sequence numbers start (default 0). An adapter whose fingerprint outlives
   * the Tidings object (Workers keeps it in storage across wake-ups) passes a value that never
   * repeats, so a restarted node cannot reuse an origin id its peers still remember.
   */
  originSequenceStart?: number
}

/** Hands accepted messages on to the cluster (see src/relay). */
export interface Forwarder {
  /** `body` is the JSON to relay (UTF-8, touched stamped); it must not block the caller. */
  forward(instance: string, body: Uint8Array, touched: readonly string[]): void
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
  readonly frames: FrameContext
  forwarder: Forwarder | undefined
  /** Messages dropped because this node had already accepted them (by uniqueID or origin id). */
  duplicates = 0
  /** Messages dropped because they already carried this node's fingerprint (a relay loop). */
  loops = 0
  readonly dedup: DedupCache
  #sequence = 0
  readonly #nextOrigin = (): string => `${this.fingerprint}:${(++this.#sequence).toString(36)}`

  constructor(readonly options: TidingsOptions) {
    const { config, clock, logger, scheduler } = options
    this.fingerprint = options.fingerprint ?? generateFingerprint()
    this.#sequence = options.originSequenceStart ?? 0
    this.startedAt = clock.now()
    this.dedup = new DedupCache(options.dedup ?? { size: 100_000, age: 120_000 })
    this.hub = new Hub({ clock, logger, scheduler, limits: config.limits, history: config.history })
    this.frames = {
      hub: this.hub,
      logger,
      replayWindow: config.history.age,
      onBadFrame: () => {
        this.rejected.badFrames++
      },
      // Read on use, so a reload that changes it takes effect.
      get framesPerSecond() {
        return config.limits.framesPerSecond
      },
      get slowConsumerBytes() {
        return config.limits.slowConsumerBytes
      },
      clock,
      limited: this.limited,
    }
  }

  /**
   * Accepts a checked message for `instance`. A message that already carries this node's
   * fingerprint has been here before and is dropped (Aphlict's rule); so is one whose
   * identity (uniqueID, or the origin id tidings adds) was accepted recently, which makes
   * delivery exactly-once in any topology. Returns whether it was delivered.
   */
  ingest(instance: string, message: AdminMessage): boolean {
    const { logger } = this.options
    if (logger.tracing) {
      logger.trace(`Received notification (${instance}): ${JSON.stringify(message.value)}`)
    }
    this.hub.instance(instance).messagesIn++
    if (message.touched.includes(this.fingerprint)) {
      this.loops++
      return false
    }
    const { value } = message
    const origin = takeOrigin(value)
    const identity = identify(instance, value, origin, this.forwarder && this.#nextOrigin)
    if (identity && !this.dedup.add(identity.key, this.options.clock.now())) {
      this.duplicates++
      return false
    }
    const touched = [...message.touched, this.fingerprint]
    value.touched = touched
    const outbound = outboundFromValue(value)
    this.hub.publish(instance, message.subscribers, outbound)
    this.forwarder?.forward(instance, relayBody(outbound, identity?.origin), touched)
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
