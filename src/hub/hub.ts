/**
 * The hub: instances, their subscription indexes and the fan-out. Delivering a message
 * costs O(matching sockets): subscriber id → sockets, never a scan of every client.
 *
 * Large fan-outs are served `fanoutSlice` sockets per turn, in FIFO order, so a huge
 * broadcast cannot starve pings, the admin endpoint or relays. Messages published in the
 * same turn to the same subscribers (while the index is unchanged) share one target list
 * and are merged into one queued job, so each socket of a slice gets all of them at once
 * and an adapter that batches per turn sends them in one write. Per-socket order is the
 * publish order in every case.
 *
 * Every byte queued for a socket is charged to the output budget first (output-budget.ts);
 * replays asked for in one turn are served once, at the end of it, at the longest age asked.
 */

import { CLOSE_REASONS, CLOSE_SLOW_CONSUMER, type PolicyLimit } from '../close-codes.ts'
import type { HistoryOptions, Limits } from '../config/schema.ts'
import type { LimitStats } from '../limit-stats.ts'
import type { LogLimiter } from '../log-limiter.ts'
import type { ClientSocket, Clock, Outbound, Scheduler } from '../ports.ts'
import { utf8Length } from '../util/utf8.ts'
import { Connection } from './connection.ts'
import { type HistoryEntry, HistoryLedger } from './history.ts'
import { Instance } from './instance.ts'
import { OutputBudget, type OutputLimit } from './output-budget.ts'

export type HubLimits = Pick<
  Limits,
  | 'subscriptionsPerConnection'
  | 'subscriptionBytes'
  | 'idBytes'
  | 'slowConsumerBytes'
  | 'outputBytes'
  | 'fanoutSlice'
  | 'historyBytes'
  | 'instances'
>

/** What the hub tells whoever keeps state outside it (the Workers adapter persists these). */
export interface HubEvents {
  /** A message was kept in `instance`'s history. */
  kept?(instance: Instance, entry: HistoryEntry): void
  /** A connection was accepted. */
  connected?(connection: Connection): void
  /** A connection's subscriptions changed (after a subscribe or unsubscribe that changed them). */
  subscribed?(connection: Connection): void
  /** A connection left the hub, for whatever reason (closed, or closed for a limit). */
  disconnected?(connection: Connection): void
  /** The first socket of `instance` subscribed to `id` (present), or the last one left. */
  interest?(instance: Instance, id: string, present: boolean): void
}

/**
 * History kept outside this process (a broker's), for replays the local history cannot
 * serve: this node has not been hearing the connection's messages for the whole window.
 */
export interface SharedHistory {
  /**
   * Undefined (or a promise of undefined) when the local history covers `since` for this
   * connection; otherwise the messages to replay, oldest first. `requestedAt`: when the
   * replay was asked for (local history after it went out live).
   */
  replay(
    connection: Connection,
    since: number,
    requestedAt: number
  ): Promise<readonly Outbound[] | undefined> | undefined
}

/** What a publish knows besides the message (see Hub.publish). */
export interface PublishExtras {
  /** When the message was first accepted, if it reached this node late. */
  postedAt?: number | undefined
  /** Its `uniqueID`. */
  id?: string | undefined
}

export interface HubOptions {
  clock: Clock
  log: LogLimiter
  scheduler: Scheduler
  limits: HubLimits
  history: HistoryOptions
  stats: LimitStats
  events?: HubEvents
}

/** Process-wide counters, for metrics. */
export interface HubStats {
  deliveries: number
  slowConsumerCloses: number
  replays: number
  replayedMessages: number
  /** Replays served from the shared history (a backplane's), not this process's. */
  sharedReplays: number
}

interface FanoutJob {
  instance: Instance
  targets: readonly Connection[]
  next: number
  /** Delivered in this order to each target; more than one when same-target publishes merged. */
  messages: Outbound[]
  /** Payload bytes of `messages`, charged to each target's output budget. */
  bytes: number
}

/** At most this many messages share one queued job, bounding one turn to slice × this deliveries. */
const MERGE_LIMIT = 32

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export class Hub {
  readonly stats: HubStats = {
    deliveries: 0,
    slowConsumerCloses: 0,
    replays: 0,
    replayedMessages: 0,
    sharedReplays: 0,
  }
  readonly output: OutputBudget
  readonly ledger: HistoryLedger
  readonly #instances = new Map<string, Instance>()
  readonly #queue: FanoutJob[] = []
  #pumping = false
  /** Deliveries still queued (kept as a running count: it is read on every admin POST). */
  #queued = 0
  #epoch = 0
  #nextId = 1
  /** Connections with a replay waiting for the end of this turn. */
  #replays: Connection[] = []

  #limits: HubLimits
  #history: HistoryOptions
  readonly #events: HubEvents
  /** Where replays this process cannot serve alone are served from (a backplane's history). */
  #shared: SharedHistory | undefined

  constructor(private readonly options: HubOptions) {
    const { stats, log } = options
    this.#limits = options.limits
    this.#history = options.history
    this.#events = options.events ?? {}
    this.output = new OutputBudget(options.limits, options.scheduler, (connection, limit) =>
      this.#closeSlow(connection, limit)
    )
    this.ledger = new HistoryLedger(
      () => this.#limits.historyBytes,
      (count) => {
        stats.historyBytes += count
        log.warn(
          'limit:historyBytes',
          `History of all instances passed "limits.historyBytes" (${this.#limits.historyBytes} bytes): dropped the ${count} oldest messages.`
        )
      }
    )
  }

  /** Serve replays this process cannot serve alone from `shared` (set once, by the node). */
  useSharedHistory(shared: SharedHistory): void {
    this.#shared = shared
  }

  /** The limits in force. */
  get limits(): HubLimits {
    return this.#limits
  }

  /** New limits and history bounds (a reload): in force from the next message or frame. */
  reconfigure(limits: HubLimits, history: HistoryOptions): void {
    this.#limits = limits
    this.#history = history
    this.output.reconfigure(limits)
    for (const instance of this.#instances.values()) instance.history.reconfigure(history)
  }

  /** Deliveries queued for later turns by sliced fan-outs (0 when all are done). */
  get backlog(): number {
    return this.#queued
  }

  /** Live instances (with sockets or history). */
  get count(): number {
    return this.#instances.size
  }

  /** True when the instance exists (with sockets or history). */
  has(name: string): boolean {
    return this.#instances.has(name)
  }

  /** The instance if it exists; never creates one (status queries create no state). */
  find(name: string): Instance | undefined {
    return this.#instances.get(name)
  }

  instances(): IterableIterator<Instance> {
    return this.#instances.values()
  }

  /** True when `name` exists or one more instance fits under `limits.instances`. */
  canHold(name: string): boolean {
    return this.#instances.has(name) || this.#instances.size < this.#limits.instances
  }

  /** The instance, created on first use. */
  instance(name: string): Instance {
    let instance = this.#instances.get(name)
    if (!instance) {
      instance = new Instance(name, this.#history, this.ledger)
      this.#instances.set(name, instance)
    }
    return instance
  }

  /**
   * Sockets of `name` joined (+1) or left (-1) in another process of this node (a worker):
   * the instance, and the counters `/status/` reports, live as long as they do.
   */
  holdElsewhere(name: string, delta: number): void {
    const instance =
      this.find(name) ?? (delta > 0 && this.canHold(name) ? this.instance(name) : undefined)
    if (instance) instance.heldElsewhere = Math.max(0, instance.heldElsewhere + delta)
  }

  connect(socket: ClientSocket, instanceName: string): Connection {
    const instance = this.instance(instanceName)
    const connection = new Connection(this.#nextId++, instance, socket, this.options.clock.now())
    instance.connections.add(connection)
    instance.total++
    this.#events.connected?.(connection)
    return connection
  }

  /** Removes a connection from every list it is in. Safe to call more than once. */
  disconnect(connection: Connection): void {
    if (!connection.open) return
    connection.open = false
    const { instance } = connection
    for (const id of connection.subs) {
      this.#unindex(instance, id, connection)
    }
    connection.subs.clear()
    connection.subBytes = 0
    instance.connections.delete(connection)
    this.output.forget(connection)
    this.#events.disconnected?.(connection)
  }

  /**
   * Adds subscriptions. Returns the limit they would break, adding nothing, or undefined
   * when they were added: an id longer than `idBytes`, more than `subscriptionsPerConnection`
   * ids, or more than `subscriptionBytes` of them.
   */
  subscribe(connection: Connection, ids: readonly string[]): PolicyLimit | undefined {
    if (!connection.open) return undefined
    const limits = this.#limits
    let fresh = 0
    let bytes = 0
    for (const id of ids) {
      const length = utf8Length(id)
      if (length > limits.idBytes) return 'idBytes'
      if (!connection.subs.has(id)) {
        fresh++
        bytes += length
      }
    }
    if (connection.subs.size + fresh > limits.subscriptionsPerConnection) {
      return 'subscriptionsPerConnection'
    }
    if (connection.subBytes + bytes > limits.subscriptionBytes) return 'subscriptionBytes'
    if (fresh === 0) return undefined
    const { index } = connection.instance
    for (const id of ids) {
      if (connection.subs.has(id)) continue
      connection.subs.add(id)
      connection.subBytes += utf8Length(id)
      let sockets = index.get(id)
      if (!sockets) {
        sockets = new Set()
        index.set(id, sockets)
        this.#events.interest?.(connection.instance, id, true)
      }
      sockets.add(connection)
      connection.instance.version++
    }
    this.#events.subscribed?.(connection)
    return undefined
  }

  unsubscribe(connection: Connection, ids: readonly string[]): void {
    let changed = false
    for (const id of ids) {
      if (connection.subs.delete(id)) {
        connection.subBytes -= utf8Length(id)
        this.#unindex(connection.instance, id, connection)
        changed = true
      }
    }
    if (changed && connection.open) this.#events.subscribed?.(connection)
  }

  /**
   * Delivers `message` to every open socket of the instance subscribed to any of
   * `subscribers` (each socket at most once) and keeps it for replay. With `postedAt` (a
   * message that arrived late), only sockets open by then get it live.
   * Returns how many sockets it goes to.
   */
  publish(
    instanceName: string,
    subscribers: readonly string[],
    message: Outbound,
    extras?: PublishExtras
  ): number {
    const instance = this.instance(instanceName)
    const now = this.options.clock.now()
    const kept = instance.history.append({ at: now, subscribers, message, id: extras?.id }, now)
    const count = this.#fanOut(instance, subscribers, message, extras?.postedAt)
    // After the delivery, so whoever keeps the counters sees this message's.
    if (kept) this.#events.kept?.(instance, kept)
    return count
  }

  #fanOut(
    instance: Instance,
    subscribers: readonly string[],
    message: Outbound,
    postedAt: number | undefined
  ): number {
    let targets = this.#targets(instance, subscribers)
    if (postedAt !== undefined) {
      // A copy, so the shared target list stays whole (and is never merged with this one).
      targets = targets.filter((connection) => connection.openedAt <= postedAt)
    }
    if (targets.length === 0) return 0
    const queue = this.#queue
    const bytes = message.bytes.byteLength
    if (queue.length === 0 && targets.length <= this.#limits.fanoutSlice) {
      this.#deliver(instance, targets, 0, targets.length, [message], bytes)
      return targets.length
    }
    const last = queue[queue.length - 1]
    if (
      last !== undefined &&
      last.targets === targets &&
      last.next === 0 &&
      last.messages.length < MERGE_LIMIT
    ) {
      // Same targets, not started: each socket gets both, in order, in the same turn.
      last.messages.push(message)
      last.bytes += bytes
    } else {
      queue.push({ instance, targets, next: 0, messages: [message], bytes })
      this.#schedule()
    }
    this.#queued += targets.length
    return targets.length
  }

  /**
   * Asks for the caller's history since `now - age` (its own instance, its subscriptions).
   * Replays asked for in one turn are served once, at the end of the turn, at the longest
   * age asked: a burst of them costs one replay's output. While a replay from the shared
   * history is on its way, further asks wait for it and are then served as one.
   */
  requestReplay(connection: Connection, age: number): void {
    if (!connection.open) return
    if (connection.replayAge === 0 && !connection.replaying) this.#queueReplay(connection)
    connection.replayAge = Math.max(connection.replayAge, age, 1)
  }

  #queueReplay(connection: Connection): void {
    this.#replays.push(connection)
    if (this.#replays.length === 1) this.options.scheduler.defer(() => this.#serveReplays())
  }

  /**
   * Sends the connection its history since `now - age` that matches its subscriptions: from
   * this process's history, or, when that does not reach back far enough, from the shared
   * one (asynchronously; then returns 0 and counts what it sends when it has it).
   */
  replay(connection: Connection, age: number): number {
    if (!connection.open || connection.subs.size === 0) return 0
    const now = this.options.clock.now()
    const shared = this.#shared?.replay(connection, now - age, now)
    if (shared) {
      this.stats.replays++
      // What this process has as of now, in case the answer is "serve it yourself".
      const local = this.#local(connection, now - age)
      connection.replaying = true
      const serve = (messages: readonly Outbound[] | undefined): void => {
        connection.replaying = false
        if (messages) this.stats.sharedReplays++
        this.stats.replayedMessages += this.#send(connection, messages ?? local)
        // Asked for again while this one was on its way: served now, as one.
        if (connection.open && connection.replayAge > 0) this.#queueReplay(connection)
      }
      // The shared history failed us: serve what this process has, as without one.
      shared.then(serve, () => serve(undefined))
      return 0
    }
    const sent = this.#send(connection, this.#local(connection, now - age))
    this.stats.replays++
    this.stats.replayedMessages += sent
    return sent
  }

  /** This process's history of the connection's instance since `since`, for its subscriptions. */
  #local(connection: Connection, since: number): Outbound[] {
    return this.historyOf(connection.instance, connection.subs, since)
  }

  /**
   * `instance`'s history since `since` and up to `until` (clock ms) for any of `subs`: what a
   * replay sends (also for sockets this process does not hold).
   */
  historyOf(
    instance: Instance,
    subs: ReadonlySet<string>,
    since: number,
    until = Number.POSITIVE_INFINITY
  ): Outbound[] {
    const { history } = instance
    history.trim(this.options.clock.now())
    const messages: Outbound[] = []
    for (const entry of history.since(since)) {
      if (entry.at > until) break
      if (entry.subscribers.some((id) => subs.has(id))) messages.push(entry.message)
    }
    return messages
  }

  /** Replays `messages` to the connection while its output budget allows; returns how many. */
  #send(connection: Connection, messages: readonly Outbound[]): number {
    let sent = 0
    for (const message of messages) {
      if (!connection.open || !this.output.admit(connection, message.bytes.byteLength)) break
      connection.socket.sendMessage(message)
      sent++
    }
    return sent
  }

  /** Trims every history by age, forgets instances that hold nothing, checks the output budget. */
  sweep(): void {
    const now = this.options.clock.now()
    for (const [name, instance] of this.#instances) {
      instance.history.trim(now)
      // A stale target list would keep closed sockets reachable.
      if (instance.lastTargets?.version !== instance.version) instance.lastTargets = undefined
      if (instance.idle && !this.#queue.some((job) => job.instance === instance)) {
        this.#instances.delete(name)
      }
    }
    this.output.enforce()
  }

  /** Closes every connection of every instance (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const instance of this.#instances.values()) {
      for (const connection of [...instance.connections]) {
        this.disconnect(connection)
        connection.socket.close(code, reason)
      }
    }
  }

  #serveReplays(): void {
    const replays = this.#replays
    this.#replays = []
    for (const connection of replays) {
      const age = connection.replayAge
      connection.replayAge = 0
      this.replay(connection, age)
    }
  }

  #unindex(instance: Instance, id: string, connection: Connection): void {
    const sockets = instance.index.get(id)
    if (!sockets?.delete(connection)) return
    instance.version++
    if (sockets.size === 0) {
      instance.index.delete(id)
      this.#events.interest?.(instance, id, false)
    }
  }

  /**
   * The open connections subscribed to any of `subscribers`, each once. The last list of
   * each instance is reused while its index is unchanged and the ids are the same, so a
   * run of broadcasts shares one list (and queued jobs can be merged by identity).
   */
  #targets(instance: Instance, subscribers: readonly string[]): readonly Connection[] {
    const cache = instance.lastTargets
    if (
      cache !== undefined &&
      cache.version === instance.version &&
      sameIds(cache.subscribers, subscribers)
    ) {
      return cache.targets
    }
    const epoch = ++this.#epoch
    const targets: Connection[] = []
    for (const id of subscribers) {
      const sockets = instance.index.get(id)
      if (!sockets) continue
      for (const connection of sockets) {
        if (connection.mark !== epoch) {
          connection.mark = epoch
          targets.push(connection)
        }
      }
    }
    instance.lastTargets = { version: instance.version, subscribers: [...subscribers], targets }
    return targets
  }

  /** Sends `messages`, in order, to each open target in [from, to): one socket at a time. */
  #deliver(
    instance: Instance,
    targets: readonly Connection[],
    from: number,
    to: number,
    messages: readonly Outbound[],
    bytes: number
  ): void {
    const output = this.output
    const count = messages.length
    let sockets = 0
    for (let i = from; i < to; i++) {
      const connection = targets[i] as Connection
      if (!connection.open || !output.admit(connection, bytes)) continue
      const socket = connection.socket
      for (let m = 0; m < count; m++) socket.sendMessage(messages[m] as Outbound)
      sockets++
    }
    instance.messagesOut += sockets * count
    this.stats.deliveries += sockets * count
  }

  #closeSlow(connection: Connection, limit: OutputLimit): void {
    this.stats.slowConsumerCloses++
    this.options.stats[limit]++
    this.disconnect(connection)
    connection.socket.close(CLOSE_SLOW_CONSUMER, CLOSE_REASONS[limit])
    const why =
      limit === 'slowConsumerBytes'
        ? `more than "limits.slowConsumerBytes" (${this.#limits.slowConsumerBytes}) waiting to be sent`
        : `the process's waiting output passed "limits.outputBytes" (${this.#limits.outputBytes}), and it had the most`
    this.options.log.log(`close:${limit}`, `${connection.label} Closed with 4008: ${why}.`)
  }

  #schedule(): void {
    if (this.#pumping) return
    this.#pumping = true
    this.options.scheduler.defer(() => this.#pump())
  }

  /** Serves queued fan-outs, oldest first, up to one slice of sockets per turn. */
  #pump(): void {
    this.#pumping = false
    let budget = this.#limits.fanoutSlice
    while (budget > 0 && this.#queue.length > 0) {
      const job = this.#queue[0] as FanoutJob
      const to = Math.min(job.targets.length, job.next + budget)
      this.#deliver(job.instance, job.targets, job.next, to, job.messages, job.bytes)
      this.#queued -= (to - job.next) * job.messages.length
      budget -= to - job.next
      job.next = to
      if (job.next >= job.targets.length) this.#queue.shift()
    }
    if (this.#queue.length > 0) this.#schedule()
  }
}
