/**
 * The primary's worker processes, for `processes` > 1. The primary accepts every client
 * connection (its listening sockets never move) and hands it, unread, to the next worker;
 * each worker is a node of its own holding those sockets. Every message the primary
 * delivers goes to every worker (Mirror); their replays and what their sockets hold are the
 * core's business (src/node/primary.ts); a worker that dies or stops answering is replaced
 * (its sockets reconnect). One worker slot and its process: worker-process.ts.
 */
import type { Socket } from 'node:net'
import type { Config } from '../../src/config/schema.ts'
import type { PublishExtras } from '../../src/hub/hub.ts'
import type { TidingsNode } from '../../src/node/node.ts'
import { Primary } from '../../src/node/primary.ts'
import type { WorkerReport } from '../../src/node/workers.ts'
import type { Logger, Outbound } from '../../src/ports.ts'
import type { Mirror } from '../../src/tidings.ts'
import { mirrored, type ToPrimary, type ToWorker } from './ipc.ts'
import type { SocketHolders } from './lifecycle.ts'
import { WorkerProcess } from './worker-process.ts'

/** How long a worker may take to answer a report, or to stop after `close`. */
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

export interface WorkerPoolOptions {
  count: number
  node: TidingsNode
  logger: Logger
  trace: boolean
}

export class WorkerPool implements Mirror, SocketHolders {
  readonly #workers: WorkerProcess[]
  readonly #options: WorkerPoolOptions
  readonly #primary: Primary
  #config: Config
  #next = 0
  #request = 0
  readonly #pending = new Map<number, (report: WorkerReport) => void>()
  #stopping = false
  #heartbeat: ReturnType<typeof setInterval> | undefined
  /** When #watch last ran. */
  #watched = 0

  constructor(options: WorkerPoolOptions) {
    this.#options = options
    this.#primary = new Primary(options.node)
    this.#config = options.node.config
    this.#workers = Array.from({ length: options.count }, (_, i) => new WorkerProcess(i + 1))
  }

  /** Starts every worker; resolves when all are ready for sockets. */
  async start(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => this.#start(worker)))
    this.#heartbeat = setInterval(() => this.#watch(), HEARTBEAT_MS)
    this.#heartbeat.unref()
  }

  #start(worker: WorkerProcess): Promise<void> {
    const { node, trace } = this.#options
    const init: ToWorker = {
      t: 'init',
      worker: worker.id,
      config: this.#config,
      follow: node.backplane?.settings.routing,
      trace,
    }
    return worker.start(init, {
      message: (message) => this.#onMessage(worker, message),
      exit: (code, signal) => this.#onExit(worker, code, signal),
    })
  }

  /** Pings every ready worker, and kills one that has been silent for STALL_MS. */
  #watch(): void {
    if (this.#stopping) return
    const now = Date.now()
    // Right after a stall of the primary itself, the workers' answers may still be unread:
    // they are judged at the next beat.
    const judge = now - this.#watched < 2 * HEARTBEAT_MS
    this.#watched = now
    for (const worker of this.#workers) {
      if (!worker.ready) continue
      const silent = now - worker.heardAt
      if (judge && silent > STALL_MS) {
        this.#options.logger.warn(
          `Worker ${worker.id} (pid ${worker.pid}) has not answered for ${Math.round(silent / 1000)} s; killing it (its clients reconnect) to start a new one.`
        )
        worker.kill()
        continue
      }
      worker.send({ t: 'ping' })
    }
  }

  #onMessage(worker: WorkerProcess, message: ToPrimary): void {
    switch (message.t) {
      case 'report':
        this.#pending.get(message.request)?.(message.report)
        return
      case 'follow':
        for (const change of message.changes) this.#primary.follow(worker.id, change)
        return
      case 'replay':
        void this.#replay(worker, message)
        return
      default:
        return
    }
  }

  #onExit(worker: WorkerProcess, code: number | null, signal: string | null): void {
    this.#primary.letGo(worker.id)
    if (this.#stopping) return
    const quick = Date.now() - worker.startedAt < 10_000
    worker.deaths = quick ? worker.deaths + 1 : 0
    const delay = Math.min(RESPAWN_MAX_MS, RESPAWN_MS * 2 ** Math.max(0, worker.deaths - 1))
    this.#options.logger.warn(
      `Worker ${worker.id} (pid ${worker.pid}) exited (${signal ?? `code ${code}`}); its clients reconnect. Starting a new one in ${delay} ms.`
    )
    setTimeout(() => {
      if (this.#stopping) return
      worker.restarts++
      this.#start(worker).catch((error: Error) =>
        this.#options.logger.warn(`Worker ${worker.id} could not be replaced: ${error.message}`)
      )
    }, delay).unref()
  }

  /** A worker's replay, always answered (so the socket may ask again). */
  async #replay(worker: WorkerProcess, ask: Extract<ToPrimary, { t: 'replay' }>): Promise<void> {
    let messages: readonly Outbound[] = []
    try {
      messages = await this.#primary.replay(ask)
    } catch (error) {
      this.#options.node.tidings.log.warn(
        'workers:replay',
        `A replay for worker ${worker.id} failed: ${(error as Error).message}`
      )
    }
    for (const message of messages) worker.replayBytes += message.bytes.byteLength
    worker.send({
      t: 'replayed',
      request: ask.request,
      messages: messages.map((message) => message.bytes),
    })
  }

  /** Mirror: every message the primary delivers, delivered by every worker. */
  deliver(
    instance: string,
    subscribers: readonly string[],
    message: Outbound,
    extras: PublishExtras
  ): void {
    const payload: ToWorker = { t: 'message', ...mirrored(instance, subscribers, message, extras) }
    for (const worker of this.#workers) if (worker.ready) worker.send(payload)
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
        const worker = this.#workers[this.#next++ % count] as WorkerProcess
        if (!worker.ready || (!late && worker.heardAt < fresh)) continue
        if (worker.send({ t: 'socket', server }, socket)) return
      }
    }
    // No worker can take it (all restarting): the client retries.
    socket.destroy()
  }

  /** Each ready worker's report (those that do not answer in time are left out). */
  async reports(): Promise<WorkerReport[]> {
    const asked = this.#workers.filter((worker) => worker.ready)
    const answers = await Promise.all(asked.map((worker) => this.#report(worker)))
    return answers.filter((report): report is WorkerReport => report !== undefined)
  }

  #report(worker: WorkerProcess): Promise<WorkerReport | undefined> {
    return new Promise((resolve) => {
      const request = ++this.#request
      const done = (report: WorkerReport | undefined): void => {
        clearTimeout(timer)
        this.#pending.delete(request)
        resolve(report)
      }
      const timer = setTimeout(() => done(undefined), REPORT_MS)
      this.#pending.set(request, (report) =>
        done({ ...report, restarts: worker.restarts, replayBytes: worker.replayBytes })
      )
      if (!worker.send({ t: 'report', request })) done(undefined)
    })
  }

  reconfigure(next: Config): void {
    this.#config = next
    for (const worker of this.#workers) worker.send({ t: 'reload', config: next })
  }

  /** Every worker drains its sockets (4000 in waves) and exits. */
  async drain(options: { windowMs?: number; waves?: number }): Promise<void> {
    this.#stop()
    const { drain } = this.#config
    const message: ToWorker = {
      t: 'drain',
      windowMs: options.windowMs ?? drain.window,
      waves: options.waves ?? drain.waves,
    }
    await Promise.all(this.#workers.map((w) => w.stop(message, STOP_MS + message.windowMs)))
  }

  /** Every worker closes its sockets (1001) and exits; killed if it does not in time. */
  async close(timeoutMs: number): Promise<void> {
    this.#stop()
    const waitMs = Math.max(timeoutMs, STOP_MS)
    await Promise.all(this.#workers.map((w) => w.stop({ t: 'close' }, waitMs)))
  }

  #stop(): void {
    this.#stopping = true
    clearInterval(this.#heartbeat)
  }
}
