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
 */

import { CLOSE_SLOW_CONSUMER } from '../close-codes.ts'
import type { HistoryOptions, Limits } from '../config/schema.ts'
import type { ClientSocket, Clock, Logger, Outbound, Scheduler } from '../ports.ts'
import { Connection } from './connection.ts'
import { Instance } from './instance.ts'

export interface HubOptions {
  clock: Clock
  logger: Logger
  scheduler: Scheduler
  limits: Pick<Limits, 'subscriptionsPerConnection' | 'slowConsumerBytes' | 'fanoutSlice'>
  history: HistoryOptions
}

/** Process-wide counters, for metrics. */
export interface HubStats {
  deliveries: number
  slowConsumerCloses: number
  replays: number
  replayedMessages: number
}

interface FanoutJob {
  instance: Instance
  targets: readonly Connection[]
  next: number
  /** Delivered in this order to each target; more than one when same-target publishes merged. */
  messages: Outbound[]
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
  }
  readonly #instances = new Map<string, Instance>()
  readonly #queue: FanoutJob[] = []
  #pumping = false
  /** Deliveries still queued (kept as a running count: it is read on every admin POST). */
  #queued = 0
  #epoch = 0
  #nextId = 1

  constructor(private readonly options: HubOptions) {}

  /** Deliveries queued for later turns by sliced fan-outs (0 when all are done). */
  get backlog(): number {
    return this.#queued
  }

  /** The instance if it exists; never creates one (status queries create no state). */
  find(name: string): Instance | undefined {
    return this.#instances.get(name)
  }

  instances(): IterableIterator<Instance> {
    return this.#instances.values()
  }

  /** The instance, created on first use. */
  instance(name: string): Instance {
    let instance = this.#instances.get(name)
    if (!instance) {
      instance = new Instance(name, this.options.history)
      this.#instances.set(name, instance)
    }
    return instance
  }

  connect(socket: ClientSocket, instanceName: string): Connection {
    const instance = this.instance(instanceName)
    const connection = new Connection(this.#nextId++, instance, socket)
    instance.connections.add(connection)
    instance.total++
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
    instance.connections.delete(connection)
  }

  /**
   * Adds subscriptions. Returns false, adding nothing, when they would take the
   * connection past its subscription limit.
   */
  subscribe(connection: Connection, ids: readonly string[]): boolean {
    if (!connection.open) return true
    let fresh = 0
    for (const id of ids) {
      if (!connection.subs.has(id)) fresh++
    }
    if (connection.subs.size + fresh > this.options.limits.subscriptionsPerConnection) {
      return false
    }
    const { index } = connection.instance
    for (const id of ids) {
      if (connection.subs.has(id)) continue
      connection.subs.add(id)
      let sockets = index.get(id)
      if (!sockets) {
        sockets = new Set()
        index.set(id, sockets)
      }
      sockets.add(connection)
      connection.instance.version++
    }
    return true
  }

  unsubscribe(connection: Connection, ids: readonly string[]): void {
    for (const id of ids) {
      if (connection.subs.delete(id)) {
        this.#unindex(connection.instance, id, connection)
      }
    }
  }

  /**
   * Delivers `message` to every open socket of the instance subscribed to any of
   * `subscribers` (each socket at most once) and keeps it for replay.
   * Returns how many sockets it goes to.
   */
  publish(instanceName: string, subscribers: readonly string[], message: Outbound): number {
    const instance = this.instance(instanceName)
    const now = this.options.clock.now()
    instance.history.append({ at: now, subscribers, message }, now)
    const targets = this.#targets(instance, subscribers)
    if (targets.length === 0) return 0
    const queue = this.#queue
    if (queue.length === 0 && targets.length <= this.options.limits.fanoutSlice) {
      this.#deliver(instance, targets, 0, targets.length, [message])
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
    } else {
      queue.push({ instance, targets, next: 0, messages: [message] })
      this.#schedule()
    }
    this.#queued += targets.length
    return targets.length
  }

  /** Sends the caller the history of its own instance, since `now - age`, that matches its subscriptions. */
  replay(connection: Connection, age: number): number {
    if (!connection.open || connection.subs.size === 0) return 0
    const now = this.options.clock.now()
    const { history } = connection.instance
    history.trim(now)
    let sent = 0
    for (const entry of history.since(now - age)) {
      if (entry.subscribers.some((id) => connection.subs.has(id))) {
        connection.socket.sendMessage(entry.message)
        sent++
      }
    }
    this.stats.replays++
    this.stats.replayedMessages += sent
    return sent
  }

  /** Trims every history by age and forgets instances that hold nothing. */
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

  #unindex(instance: Instance, id: string, connection: Connection): void {
    const sockets = instance.index.get(id)
    if (!sockets?.delete(connection)) return
    instance.version++
    if (sockets.size === 0) instance.index.delete(id)
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
    messages: readonly Outbound[]
  ): void {
    const cap = this.options.limits.slowConsumerBytes
    const count = messages.length
    let sockets = 0
    for (let i = from; i < to; i++) {
      const connection = targets[i] as Connection
      if (!connection.open) continue
      const socket = connection.socket
      if (socket.bufferedAmount > cap) {
        this.#closeSlow(connection)
        continue
      }
      for (let m = 0; m < count; m++) socket.sendMessage(messages[m] as Outbound)
      sockets++
    }
    instance.messagesOut += sockets * count
    this.stats.deliveries += sockets * count
  }

  #closeSlow(connection: Connection): void {
    this.stats.slowConsumerCloses++
    this.disconnect(connection)
    connection.socket.close(CLOSE_SLOW_CONSUMER, 'slow consumer')
    this.options.logger.log(`${connection.label} Closed: too much unsent data (slow consumer).`)
  }

  #schedule(): void {
    if (this.#pumping) return
    this.#pumping = true
    this.options.scheduler.defer(() => this.#pump())
  }

  /** Serves queued fan-outs, oldest first, up to one slice of sockets per turn. */
  #pump(): void {
    this.#pumping = false
    let budget = this.options.limits.fanoutSlice
    while (budget > 0 && this.#queue.length > 0) {
      const job = this.#queue[0] as FanoutJob
      const to = Math.min(job.targets.length, job.next + budget)
      this.#deliver(job.instance, job.targets, job.next, to, job.messages)
      this.#queued -= (to - job.next) * job.messages.length
      budget -= to - job.next
      job.next = to
      if (job.next >= job.targets.length) this.#queue.shift()
    }
    if (this.#queue.length > 0) this.#schedule()
  }
}
