/**
 * The primary's worker processes, for `processes` > 1. The primary accepts every client
 * connection (its listening sockets never move) and hands it, unread, to the next worker;
 * each worker is a node of its own holding those sockets. Every message the primary
 * delivers goes to every worker (Mirror), replays are answered by the primary's history
 * (and its backplane), and a worker that dies is replaced (its sockets reconnect).
 */
import { type ChildProcess, fork } from 'node:child_process'
import type { Socket } from 'node:net'
import type { Config } from '../../src/config/schema.ts'
import type { Connection } from '../../src/hub/connection.ts'
import type { PublishExtras } from '../../src/hub/hub.ts'
import { withinRoom } from '../../src/hub/output-budget.ts'
import type { InterestChange, TidingsNode } from '../../src/node/node.ts'
import type { WorkerReport } from '../../src/node/workers.ts'
import type { Logger, Outbound } from '../../src/ports.ts'
import type { Mirror } from '../../src/tidings.ts'
import { mirrored, type ToPrimary, type ToWorker } from './ipc.ts'
import type { SocketHolders } from './lifecycle.ts'
import { workerEntry } from './worker-entry.ts'

/** How long a worker may take to start, answer a report, or stop after `close`. */
const START_MS = 20_000
const REPORT_MS = 2000
const STOP_MS = 10_000
/** A worker that keeps dying is replaced after this delay, doubling up to the cap. */
const RESPAWN_MS = 500
const RESPAWN_MAX_MS = 30_000
/**
 * Each worker is pinged every HEARTBEAT_MS. New connections skip one that has said nothing for
 * SUSPECT_MS (while another is fresh); one silent for STALL_MS is stuck (an endless loop, a
 * stopped process) and is killed, to be replaced, rather than left holding its clients and
 * taking new ones it will never serve.
 */
export const HEARTBEAT_MS = 1000
export const SUSPECT_MS = 2500
export const STALL_MS = 10_000

interface Worker {
  readonly id: number
  child: ChildProcess
  ready: boolean
  /** Consecutive quick deaths, for the respawn back-off. */
  deaths: number
  startedAt: number
  /** Times its process was replaced. */
  restarts: number
  /** Bytes of history sent to it for its sockets' replays. */
  replayBytes: number
  /** When it last said anything (Date.now()). */
  heardAt: number
  /** What its sockets hold that the primary counts (see #follow), by [instance, id]. */
  held: Map<string, number>
}

export interface WorkerPoolOptions {
  count: number
  node: TidingsNode
  logger: Logger
  trace: boolean
}

export class WorkerPool implements Mirror, SocketHolders {
  readonly #workers: Worker[] = []
  readonly #options: WorkerPoolOptions
  #config: Config
  #next = 0
  #request = 0
  readonly #pending = new Map<number, (report: WorkerReport) => void>()
  #stopping = false
  #heartbeat: ReturnType<typeof setInterval> | undefined

  constructor(options: WorkerPoolOptions) {
    this.#options = options
    this.#config = options.node.config
  }

  /** Starts every worker; resolves when all are ready for sockets. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.#options.count }, (_, i) => this.#spawn(i + 1)))
    this.#heartbeat = setInterval(() => this.#watch(), HEARTBEAT_MS)
    this.#heartbeat.unref()
  }

  /** Pings every ready worker, and kills one that has been silent for STALL_MS. */
  #watch(): void {
    if (this.#stopping) return
    const now = Date.now()
    for (const worker of this.#workers) {
      if (!worker.ready) continue
      const silent = now - worker.heardAt
      if (silent > STALL_MS) {
        worker.ready = false
        this.#options.logger.warn(
          `Worker ${worker.id} (pid ${worker.child.pid}) has not answered for ${Math.round(silent / 1000)} s; killing it (its clients reconnect) to start a new one.`
        )
        worker.child.kill('SIGKILL')
        continue
      }
      this.#send(worker, { t: 'ping' })
    }
  }

  #spawn(id: number, previous?: Worker): Promise<void> {
    const child = fork(workerEntry(), ['worker'], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: process.execArgv,
    })
    const worker: Worker = previous ?? {
      id,
      child,
      ready: false,
      deaths: 0,
      startedAt: 0,
      restarts: 0,
      replayBytes: 0,
      heardAt: 0,
      held: new Map(),
    }
    worker.child = child
    worker.ready = false
    worker.startedAt = Date.now()
    this.#workers[id - 1] = worker
    const { node, trace } = this.#options
    const init: ToWorker = {
      t: 'init',
      worker: id,
      config: this.#config,
      follow: node.backplane?.settings.routing,
      trace,
    }
    child.send(init)
    // A send to a worker that has just died fails with EPIPE: it is being replaced already.
    child.on('error', () => {})
    child.on('message', (message: ToPrimary) => this.#onMessage(worker, message))
    child.on('exit', (code, signal) => this.#onExit(worker, child, code, signal))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${id} did not start`)), START_MS)
      const ready = (message: ToPrimary): void => {
        if (message.t !== 'ready') return
        clearTimeout(timer)
        child.off('message', ready)
        resolve()
      }
      child.on('message', ready)
      child.once('exit', () => {
        clearTimeout(timer)
        reject(new Error(`worker ${id} exited while starting`))
      })
    })
  }

  #onMessage(worker: Worker, message: ToPrimary): void {
    worker.heardAt = Date.now()
    switch (message.t) {
      case 'ready':
        worker.ready = true
        return
      case 'pong':
        return
      case 'report':
        this.#pending.get(message.request)?.(message.report)
        return
      case 'follow':
        for (const change of message.changes) this.#follow(worker, change)
        return
      case 'replay':
        void this.#replay(worker, message)
        return
      case 'drained':
        return
    }
  }

  /**
   * A worker's sockets joined or left an instance (the primary keeps the instance and its
   * counters meanwhile), or needed an id or no longer (the backplane, routing by subscriber).
   * Kept per worker, so that what a worker held is let go when it dies.
   */
  #follow(worker: Worker, change: InterestChange): void {
    const key = JSON.stringify([change.instance, change.id ?? null])
    const held = (worker.held.get(key) ?? 0) + (change.present ? 1 : -1)
    if (held < 0) return
    if (held === 0) worker.held.delete(key)
    else worker.held.set(key, held)
    this.#apply(change)
  }

  #apply(change: InterestChange): void {
    const { node } = this.#options
    if (change.id === undefined) {
      node.tidings.hub.holdElsewhere(change.instance, change.present ? 1 : -1)
    }
    node.follow(change)
  }

  /** A worker is gone, and its sockets with it. */
  #letGo(worker: Worker): void {
    const held = [...worker.held]
    worker.held.clear()
    for (const [key, count] of held) {
      const [instance, id] = JSON.parse(key) as [string, string | null]
      for (let i = 0; i < count; i++) this.#apply({ instance, id: id ?? undefined, present: false })
    }
  }

  #onExit(worker: Worker, child: ChildProcess, code: number | null, signal: string | null): void {
    if (worker.child !== child) return
    worker.ready = false
    this.#letGo(worker)
    if (this.#stopping) return
    const quick = Date.now() - worker.startedAt < 10_000
    worker.deaths = quick ? worker.deaths + 1 : 0
    const delay = Math.min(RESPAWN_MAX_MS, RESPAWN_MS * 2 ** Math.max(0, worker.deaths - 1))
    this.#options.logger.warn(
      `Worker ${worker.id} (pid ${child.pid}) exited (${signal ?? `code ${code}`}); its clients reconnect. Starting a new one in ${delay} ms.`
    )
    setTimeout(() => {
      if (this.#stopping) return
      worker.restarts++
      this.#spawn(worker.id, worker).catch((error: Error) =>
        this.#options.logger.warn(`Worker ${worker.id} could not be replaced: ${error.message}`)
      )
    }, delay).unref()
  }

  /**
   * A worker's replay: this node's history (or its backplane's) for the worker's socket, no
   * more than the socket has room for. Always answered, so the socket may ask again.
   */
  async #replay(worker: Worker, request: Extract<ToPrimary, { t: 'replay' }>): Promise<void> {
    let messages: readonly Outbound[] = []
    try {
      messages = withinRoom(await this.#history(request), request.room)
    } catch (error) {
      this.#options.logger.warn(
        `A replay for worker ${worker.id} failed: ${(error as Error).message}`
      )
    }
    let bytes = 0
    for (const message of messages) bytes += message.bytes.byteLength
    worker.replayBytes += bytes
    this.#send(worker, {
      t: 'replayed',
      request: request.request,
      messages: messages.map((message) => message.bytes),
    })
  }

  async #history(request: Extract<ToPrimary, { t: 'replay' }>): Promise<readonly Outbound[]> {
    const { node } = this.#options
    const { hub } = node.tidings
    const instance =
      hub.find(request.instance) ??
      (hub.canHold(request.instance) ? hub.instance(request.instance) : undefined)
    if (!instance) return []
    // What a connection is to the hub and the backplane, for a socket held elsewhere.
    const subs = new Set(request.subscribers)
    const stand = { instance, subs, open: true } as unknown as Connection
    const shared = node.backplane?.replay(stand, request.since, request.requestedAt)
    const fromShared = shared ? await shared.catch(() => undefined) : undefined
    if (fromShared) return fromShared
    instance.history.trim(Date.now())
    const local: Outbound[] = []
    for (const entry of instance.history.since(request.since)) {
      if (entry.at > request.requestedAt) break
      if (entry.subscribers.some((id) => subs.has(id))) local.push(entry.message)
    }
    return local
  }

  /**
   * Queues a message for the worker; false when its channel is gone. (send() itself returns
   * false also when it only has a backlog: the message is queued all the same.)
   */
  #send(worker: Worker, message: ToWorker, handle?: Socket): boolean {
    if (!worker.child.connected) return false
    try {
      if (handle) worker.child.send(message, handle)
      else worker.child.send(message)
      return true
    } catch {
      return false
    }
  }

  /** Mirror: every message the primary delivers, delivered by every worker. */
  deliver(
    instance: string,
    subscribers: readonly string[],
    message: Outbound,
    extras: PublishExtras
  ): void {
    const payload: ToWorker = { t: 'message', ...mirrored(instance, subscribers, message, extras) }
    for (const worker of this.#workers) if (worker.ready) this.#send(worker, payload)
  }

  /**
   * A client connection the primary accepted (paused): to the next ready worker that has been
   * heard from lately, or else to the next ready one.
   */
  dispatch(socket: Socket, server: number): void {
    const count = this.#workers.length
    const fresh = Date.now() - SUSPECT_MS
    for (const late of [false, true]) {
      for (let tried = 0; tried < count; tried++) {
        const worker = this.#workers[this.#next++ % count] as Worker
        if (!worker.ready || (!late && worker.heardAt < fresh)) continue
        if (this.#send(worker, { t: 'socket', server }, socket)) return
      }
    }
    // No worker can take it (all restarting): the client retries.
    socket.destroy()
  }

  /** Each ready worker's report (those that do not answer in time are left out). */
  async reports(): Promise<WorkerReport[]> {
    const asked = this.#workers.filter((worker) => worker.ready)
    const answers = await Promise.all(
      asked.map(
        (worker) =>
          new Promise<WorkerReport | undefined>((resolve) => {
            const request = ++this.#request
            const timer = setTimeout(() => {
              this.#pending.delete(request)
              resolve(undefined)
            }, REPORT_MS)
            this.#pending.set(request, (report) => {
              clearTimeout(timer)
              this.#pending.delete(request)
              resolve({ ...report, restarts: worker.restarts, replayBytes: worker.replayBytes })
            })
            if (!this.#send(worker, { t: 'report', request })) {
              clearTimeout(timer)
              this.#pending.delete(request)
              resolve(undefined)
            }
          })
      )
    )
    return answers.filter((report): report is WorkerReport => report !== undefined)
  }

  reconfigure(next: Config): void {
    this.#config = next
    for (const worker of this.#workers) this.#send(worker, { t: 'reload', config: next })
  }

  /** Every worker drains its sockets (4000 in waves) and exits. */
  async drain(options: { windowMs?: number; waves?: number }): Promise<void> {
    this.#stop()
    const { drain } = this.#config
    await this.#each({
      t: 'drain',
      windowMs: options.windowMs ?? drain.window,
      waves: options.waves ?? drain.waves,
    })
  }

  /** Every worker closes its sockets (1001) and exits; killed if it does not in time. */
  async close(timeoutMs: number): Promise<void> {
    this.#stop()
    await this.#each({ t: 'close' }, Math.max(timeoutMs, STOP_MS))
  }

  #stop(): void {
    this.#stopping = true
    clearInterval(this.#heartbeat)
  }

  async #each(message: ToWorker, timeoutMs = STOP_MS + this.#config.drain.window): Promise<void> {
    await Promise.all(
      this.#workers.map((worker) => {
        const child = worker.child
        if (child.exitCode !== null || child.signalCode !== null) return undefined
        return new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
          child.once('exit', () => {
            clearTimeout(timer)
            resolve()
          })
          if (!this.#send(worker, message)) child.kill('SIGKILL')
        })
      })
    )
  }
}
