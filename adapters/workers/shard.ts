/**
 * One shard of one instance, as plain objects: the Tidings core (with its hub, history and
 * counters mirrored to storage), the socket registry, the core's admin app and, on shard 0
 * of a deployment with `cluster` peers, the core's relay over fetch. The Durable Object
 * class around it only turns platform events into calls on this.
 */
import type { Hono } from 'hono'
import { createAdminApp } from '../../src/admin/app.ts'
import type { AdminMessage } from '../../src/admin/body.ts'
import type { HistoryEntry } from '../../src/hub/history.ts'
import { outboundFromText } from '../../src/hub/outbound.ts'
import type { Clock, Logger, PeerTransport } from '../../src/ports.ts'
import { Relay } from '../../src/relay/relay.ts'
import { clusterStatusExtras } from '../../src/relay/status.ts'
import { Tidings, type TidingsOptions } from '../../src/tidings.ts'
import type { WorkerSettings } from './env.ts'
import { ConsoleLogger } from './logger.ts'
import { type HibernatableSocket, SocketRegistry } from './registry.ts'
import { SHARD_RESTORED } from './status.ts'
import type { ShardStore } from './store.ts'

export interface ShardOptions {
  instance: string
  index: number
  settings: WorkerSettings
  fingerprint: string
  store: ShardStore
  /** How shard 0 reaches `cluster` peers. */
  transport: PeerTransport
  clock: Clock
}

/** A Tidings whose accepted messages and counters are written through to storage. */
class StoredTidings extends Tidings {
  constructor(
    options: TidingsOptions,
    private readonly store: ShardStore
  ) {
    super(options)
  }

  override ingest(instance: string, message: AdminMessage): boolean {
    const before = this.hub.find(instance)?.history.newest
    const delivered = super.ingest(instance, message)
    const state = this.hub.instance(instance)
    const { history } = state
    const newest = history.newest
    if (delivered && newest !== undefined && newest !== before) {
      this.store.append(
        { at: newest.at, subscribers: [...newest.subscribers], text: newest.message.text },
        history.size
      )
    } else {
      this.store.keep(history.size)
    }
    saveCounters(this.store, state)
    return delivered
  }
}

function saveCounters(
  store: ShardStore,
  instance: { total: number; messagesIn: number; messagesOut: number }
): void {
  store.saveCounters({
    total: instance.total,
    messagesIn: instance.messagesIn,
    messagesOut: instance.messagesOut,
  })
}

export class Shard {
  readonly instance: string
  readonly settings: WorkerSettings
  readonly logger: Logger
  readonly tidings: Tidings
  readonly registry: SocketRegistry
  readonly admin: Hono
  readonly relay: Relay | undefined
  readonly #store: ShardStore

  constructor(options: ShardOptions) {
    const { instance, index, settings, store, clock } = options
    const { config } = settings
    this.instance = instance
    this.settings = settings
    this.#store = store
    this.logger = new ConsoleLogger(settings.trace, `[${instance}/${index}] `)
    const scheduler = { defer: (task: () => void) => setTimeout(task, 0) }
    this.tidings = new StoredTidings(
      {
        config,
        clock,
        logger: this.logger,
        scheduler,
        fingerprint: options.fingerprint,
        dedup: { size: config.relay.dedupSize, age: config.relay.dedupAge },
      },
      store
    )
    // Every shard receives every message; only shard 0 passes them on to the cluster.
    this.relay =
      index === 0 && config.cluster.length > 0
        ? new Relay({
            config,
            fingerprint: options.fingerprint,
            transport: options.transport,
            clock,
            logger: this.logger,
            log: this.tidings.log,
            scheduler,
          })
        : undefined
    this.tidings.forwarder = this.relay
    this.registry = new SocketRegistry(this.tidings.hub, this.logger)
    let startedAt = Number(store.meta('startedAt'))
    if (!Number.isFinite(startedAt) || startedAt <= 0) {
      startedAt = clock.now()
      store.setMeta('startedAt', String(startedAt))
    }
    const cluster = clusterStatusExtras(this.tidings, this.relay)
    this.admin = createAdminApp({
      tidings: this.tidings,
      logger: this.logger,
      bodyBytes: config.limits.bodyBytes,
      statusExtras: (status) => {
        // The shard's uptime, not this wake-up's; and how many sockets the wake restored.
        status.uptime = clock.now() - startedAt
        status[SHARD_RESTORED] = this.registry.restored
        cluster(status)
      },
    })
  }

  /**
   * Rebuilds the instance after a wake: the history still within its age from storage, the
   * counters, and every open socket's connection and subscriptions from its attachment.
   */
  restore(sockets: Iterable<HibernatableSocket>, now: number): void {
    const instance = this.tidings.hub.instance(this.instance)
    const { history } = instance
    for (const entry of this.#store.history(now - this.settings.config.history.age)) {
      const restored: HistoryEntry = {
        at: entry.at,
        subscribers: entry.subscribers,
        message: outboundFromText(entry.text),
      }
      history.append(restored, now)
    }
    this.#store.keep(history.size)
    this.registry.restore(sockets)
    const counters = this.#store.counters()
    if (counters !== undefined) {
      instance.total = Math.max(counters.total, instance.active)
      instance.messagesIn = counters.messagesIn
      instance.messagesOut = counters.messagesOut
    }
  }

  /** A socket the object just accepted. */
  accept(ws: HibernatableSocket): void {
    const connection = this.registry.accept(ws, this.instance)
    saveCounters(this.#store, connection.instance)
    if (this.logger.tracing) this.logger.trace(`${connection.label} Connected.`)
  }

  /** A socket closed or failed. */
  drop(ws: HibernatableSocket): void {
    const connection = this.registry.remove(ws)
    if (connection && this.logger.tracing) this.logger.trace(`${connection.label} Disconnected.`)
  }
}
