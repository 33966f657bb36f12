/**
 * One tidings node, assembled from a config and the runtime's ports: the hub and message path
 * (Tidings), the cluster relay, client-port admission and frame policy, the admin app with
 * status and metrics, drain and close, and reload. Adapters only translate their runtime's
 * events onto it: a TCP connection (accept), an upgrade request (admit), a socket (open), a
 * frame (frame), a close (closed), a tick every second (tick), and serve `admin.fetch`.
 * Whatever a runtime must persist, it learns from `events`.
 */
import type { Hono } from 'hono'
import { createAdminApp } from '../admin/app.ts'
import type { SecretPolicy } from '../admin/auth.ts'
import { Backplane } from '../backplane/backplane.ts'
import { backplaneHealth, backplaneStatusExtras } from '../backplane/status.ts'
import { Admission, type Lease, type UpgradeRequest } from '../client/admission.ts'
import { createClientApp } from '../client/app.ts'
import { exceedsFrameBytes, handleFrame } from '../client/frames.ts'
import { CLOSE_DRAIN, CLOSE_GOING_AWAY, CLOSE_REASONS, CLOSE_TOO_BIG } from '../close-codes.ts'
import type { Config } from '../config/schema.ts'
import type { RequestError } from '../errors.ts'
import type { Connection } from '../hub/connection.ts'
import { outboundFromText } from '../hub/outbound.ts'
import { PeerLatencies, relayHealth } from '../metrics/relay-health.ts'
import { collectStats, type NodeStats } from '../metrics/stats.ts'
import type { ClientSocket } from '../ports.ts'
import { Relay } from '../relay/relay.ts'
import { clusterStatusExtras } from '../relay/status.ts'
import { globalTimers } from '../relay/timers.ts'
import { type StatusBody, Tidings } from '../tidings.ts'
import { closeInWaves, type DrainResult, drainClose } from './drain.ts'
import { NodeEvents } from './events.ts'
import type { NodeOptions, NodeState, SavedInstance } from './options.ts'
import { type Reconfiguration, reconfiguration } from './reconfigure.ts'
import { mergeWorkerStats, mergeWorkerStatus } from './workers.ts'

export type { NodeOptions, NodeState, SavedInstance } from './options.ts'

/** See TidingsNode.follow. */
export interface InterestChange {
  instance: string
  /** A subscriber id; absent for a socket joining or leaving the instance. */
  id?: string | undefined
  present: boolean
}

export class TidingsNode {
  readonly tidings: Tidings
  readonly relay: Relay | undefined
  readonly backplane: Backplane | undefined
  readonly admission: Admission
  readonly events = new NodeEvents()
  /** The admin port: POST /, /status/, /metrics, /readyz, /healthz, /stats.json, /dashboard/. */
  readonly admin: Hono
  /** The client port's answer to anything that is not an upgrade (Aphlict's 501). */
  readonly clientHttp: Hono = createClientApp()
  readonly state: NodeState = { listening: false, draining: false }
  readonly #options: NodeOptions
  readonly #latencies = new PeerLatencies()
  #config: Config
  #closing = false

  constructor(options: NodeOptions) {
    const { config, clock, logger, scheduler } = options
    this.#options = options
    this.#config = config
    this.tidings = new Tidings({
      config,
      clock,
      logger,
      scheduler,
      dedup: { size: config.relay.dedupSize, age: config.relay.dedupAge },
      events: this.events.hubEvents(),
      ...(options.fingerprint ? { fingerprint: options.fingerprint } : {}),
    })
    const relays = options.relays ?? true
    if (relays && config.cluster.length > 0) {
      if (!options.transport) throw new Error('a node with cluster peers needs a PeerTransport')
      this.relay = new Relay({
        config,
        fingerprint: this.tidings.fingerprint,
        transport: options.transport,
        clock,
        logger,
        log: this.tidings.log,
        scheduler,
        observe: this.#latencies.observe,
        ...(options.timers ? { timers: options.timers } : {}),
      })
      this.tidings.forwarders.push(this.relay)
    }
    this.backplane = config.backplane ? this.#backplane(options) : undefined
    this.admission = new Admission({
      limits: config.limits,
      origins: config.origins,
      trustedProxies: config.limits.trustedProxies,
      stats: this.tidings.limited,
      log: this.tidings.log,
      clock,
      instances: this.tidings.hub,
      ceiling: options.runtime?.ceiling,
    })
    this.admin = createAdminApp(this)
  }

  /** The backplane, wired to the node: forwards, replays, and follows the node's sockets. */
  #backplane(options: NodeOptions): Backplane {
    if (!options.broker) throw new Error('a node with a backplane needs a BrokerFactory')
    const backplane = new Backplane({
      config: () => this.#config,
      broker: options.broker,
      tidings: this.tidings,
      clock: options.clock,
      logger: options.logger,
      log: this.tidings.log,
      scheduler: options.scheduler,
      timers: options.timers ?? globalTimers,
    })
    this.tidings.forwarders.push(backplane)
    this.tidings.hub.useSharedHistory(backplane)
    this.events.on('connected', ({ connection }) =>
      this.follow({ instance: connection.instance.name, present: true })
    )
    this.events.on('disconnected', ({ connection }) =>
      this.follow({ instance: connection.instance.name, present: false })
    )
    this.events.on('interest', ({ instance, id, present }) =>
      this.follow({ instance: instance.name, id, present })
    )
    return backplane
  }

  /**
   * A socket of this node joined or left an instance (no `id`), or the first socket of an
   * instance subscribed to `id` or the last one left it. The node's own hub reports its
   * sockets; a runtime whose sockets live elsewhere (worker processes) reports theirs. The
   * backplane subscribes to what they need.
   */
  follow(change: InterestChange): void {
    const backplane = this.backplane
    if (!backplane) return
    const { interest, names } = backplane
    const byInstance = backplane.settings.routing === 'instance'
    if (byInstance !== (change.id === undefined)) return
    const channel =
      change.id === undefined
        ? names.instanceChannel(change.instance)
        : names.subscriberChannel(change.instance, change.id)
    if (change.present) {
      interest.add(channel)
      backplane.learn(change.instance)
    } else {
      interest.remove(channel)
    }
  }

  /**
   * What must work before the node takes connections: the backplane's broker. Rejects with
   * the broker's reason (the runtime reports it and does not start).
   */
  async connect(): Promise<void> {
    await this.backplane?.start()
  }

  /** The configuration in force (a reload swaps it). */
  get config(): Config {
    return this.#config
  }

  get fingerprint(): string {
    return this.tidings.fingerprint
  }

  get options(): NodeOptions {
    return this.#options
  }

  /** The secret policy in force for admin requests. */
  get secretPolicy(): SecretPolicy & { everyRoute: boolean } {
    const { secret } = this.#options
    return {
      secret: this.#config.secret,
      trustLoopback: this.#config.relay.trustLoopback,
      required: secret?.required ?? false,
      open: secret?.open ?? false,
      everyRoute: secret?.everyRoute ?? false,
    }
  }

  // --- the client port ------------------------------------------------------------------

  /** A TCP connection was accepted: its lease, or the answer that refuses it at once. */
  accept(peer: string, handle: unknown): Lease | RequestError {
    return this.admission.accept(peer, handle)
  }

  /** An upgrade request: the instance it joins, or the answer that refuses it. */
  admit(lease: Lease | undefined, request: UpgradeRequest): string | RequestError {
    const refusing = (this.state.draining && !this.state.handingOver) || this.#closing
    return this.admission.admit(lease, request, refusing)
  }

  /** A TCP connection closed, at whatever stage (idempotent). */
  release(lease: Lease): void {
    this.admission.release(lease)
  }

  /** An upgraded socket joins `instance` (or, while handing over and draining, is sent on). */
  open(socket: ClientSocket, instance: string): Connection {
    const connection = this.tidings.hub.connect(socket, instance)
    if (this.state.draining && this.state.handingOver) {
      this.tidings.hub.disconnect(connection)
      socket.close(CLOSE_DRAIN, CLOSE_REASONS.drain)
    }
    return connection
  }

  /**
   * A frame from a client, as text or UTF-8 bytes. One past `limits.frameBytes` closes the
   * socket with 1009 (runtimes that can refuse it from its header, as `ws` does, never pass
   * one on; the others rely on this).
   */
  frame(connection: Connection, data: string | Uint8Array | ArrayBuffer): void {
    if (exceedsFrameBytes(data, this.#config.limits.frameBytes)) {
      this.oversized(connection)
      this.tidings.hub.disconnect(connection)
      connection.socket.close(CLOSE_TOO_BIG, CLOSE_REASONS.frameBytes)
      return
    }
    handleFrame(
      this.tidings.frameContext,
      connection,
      typeof data === 'string' ? data : decoder.decode(data)
    )
  }

  /** A frame past `limits.frameBytes` (refused by the runtime, or by frame()). */
  oversized(connection: Connection | undefined): void {
    this.tidings.limited.frameBytes++
    if (connection) {
      this.tidings.log.log(
        'close:frameBytes',
        `${connection.label} Closed with 1009: a frame larger than "limits.frameBytes".`
      )
    }
  }

  /** A socket closed (idempotent). */
  closed(connection: Connection): void {
    this.tidings.hub.disconnect(connection)
  }

  /** Every open connection, of every instance. */
  connections(): Connection[] {
    const all: Connection[] = []
    for (const instance of this.tidings.hub.instances()) all.push(...instance.connections)
    return all
  }

  /**
   * Puts back what a runtime kept of `instance` across a restart (Workers: a Durable Object's
   * storage after a wake): history entries still within `history.age`, and its counters.
   */
  restore(instance: string, saved: SavedInstance): void {
    const now = this.#options.clock.now()
    const state = this.tidings.hub.instance(instance)
    const since = now - this.#config.history.age
    for (const entry of saved.history) {
      if (entry.at < since) continue
      const { at, subscribers, text } = entry
      state.history.append({ at, subscribers, message: outboundFromText(text) }, now)
    }
    if (saved.counters) {
      state.total = Math.max(saved.counters.total, state.active)
      state.messagesIn = saved.counters.messagesIn
      state.messagesOut = saved.counters.messagesOut
    }
  }

  // --- time, status, reload -------------------------------------------------------------

  /**
   * Once a second: trims history, forgets idle instances, checks the output budget, hands
   * connections past the handshake deadline to `expire`, and writes the log summaries.
   */
  tick(expire?: (lease: Lease) => void): void {
    this.tidings.hub.sweep()
    if (expire) this.admission.expire(expire)
    this.tidings.log.flush()
  }

  /** `/status/` for one instance: Aphlict's keys, then the cluster's and the runtime's. */
  status(instance: string): StatusBody {
    const status = this.tidings.status(instance)
    clusterStatusExtras(this.tidings, this.relay)(status)
    if (this.backplane) backplaneStatusExtras(this.backplane, instance)(status)
    this.#options.runtime?.statusExtras?.(status)
    return status
  }

  /** `/status/` as the admin port answers it: with the workers' share, when there are workers. */
  async statusOf(instance: string): Promise<StatusBody> {
    const status = this.status(instance)
    const workers = this.#options.runtime?.workers
    if (workers) mergeWorkerStatus(status, await workers())
    return status
  }

  /** /stats.json and /metrics as the admin port answers them, workers included. */
  async statsOf(): Promise<NodeStats> {
    const stats = this.stats()
    const workers = this.#options.runtime?.workers
    return workers ? mergeWorkerStats(stats, await workers()) : stats
  }

  /** Everything /stats.json and /metrics report, of this process. */
  stats(): NodeStats {
    return collectStats(this.tidings, {
      ready: () => this.state.listening && !this.#closing,
      draining: () => this.state.draining,
      atCapacity: () => this.admission.atCapacity,
      connections: () => ({
        held: this.admission.held,
        handshaking: this.admission.handshaking,
        ceiling: this.admission.ceiling,
      }),
      peers: () => relayHealth(this.relay, this.#latencies),
      backplane: () => (this.backplane ? backplaneHealth(this.backplane) : undefined),
      runtime: () => this.#options.runtime?.summary?.() ?? {},
    })
  }

  /** Takes what of `next` can change now (src/node/reconfigure.ts); reports the rest. */
  reconfigure(next: Config): Omit<Reconfiguration, 'config'> {
    const { config, applied, restartNeeded } = reconfiguration(this.#config, next)
    this.#config = config
    this.tidings.reconfigure(config)
    this.admission.reconfigure(config.limits)
    this.relay?.reconfigure(config.relay)
    return { applied, restartNeeded }
  }

  // --- drain and close ------------------------------------------------------------------

  /**
   * Closes every socket with 4000 in randomised waves over the window (config `drain` unless
   * given), refusing new ones meanwhile. Resolves after the last wave.
   */
  drain(options: { windowMs?: number; waves?: number } = {}): Promise<DrainResult> {
    this.state.draining = true
    const windowMs = options.windowMs ?? this.#config.drain.window
    const waves = options.waves ?? this.#config.drain.waves
    const connections = this.connections()
    this.#options.logger.log(
      `Draining: closing ${connections.length} client sockets with 4000 in up to ${waves} waves over ${windowMs} ms.`
    )
    const close = drainClose((connection) => this.tidings.hub.disconnect(connection))
    return closeInWaves(connections, { windowMs, waves }, close, this.#options.timers)
  }

  /**
   * Closes every socket with 1001 and lets queued relays go out (at most
   * `relay.flushTimeout`, or `flushMs`), then stops the relay. Idempotent.
   */
  async close(flushMs?: number): Promise<void> {
    if (this.#closing) return
    this.#closing = true
    this.tidings.hub.closeAll(CLOSE_GOING_AWAY, CLOSE_REASONS.shutdown)
    const flush = Math.min(flushMs ?? Number.POSITIVE_INFINITY, this.#config.relay.flushTimeout)
    await Promise.all([this.relay?.close(flush), this.backplane?.close(flush)])
  }
}

const decoder = new TextDecoder()

/** Assembles a node (see TidingsNode). */
export function createNode(options: NodeOptions): TidingsNode {
  return new TidingsNode(options)
}
