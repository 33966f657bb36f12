/**
 * One worker slot of a primary (see worker-pool.ts): its current process, started with
 * `tidings worker` and spoken to over IPC (ipc.ts), and what the primary knows of it across
 * replacements: whether it is ready, when it last said anything, how often it was replaced.
 */
import { type ChildProcess, fork } from 'node:child_process'
import type { Socket } from 'node:net'
import type { ToPrimary, ToWorker } from './ipc.ts'
import { workerEntry } from './worker-entry.ts'

/** How long a worker may take to start; one that takes longer is killed. */
const START_MS = 20_000

export interface WorkerEvents {
  message(message: ToPrimary): void
  exit(code: number | null, signal: string | null): void
}

export class WorkerProcess {
  child: ChildProcess | undefined
  ready = false
  /** Consecutive quick deaths, for the respawn back-off. */
  deaths = 0
  startedAt = 0
  /** When it last said anything (Date.now()). */
  heardAt = 0
  /** Times its process was replaced. */
  restarts = 0
  /** Bytes of history sent to it for its sockets' replays. */
  replayBytes = 0

  /** 1-based, kept by the processes that replace one another in this slot. */
  constructor(readonly id: number) {}

  get pid(): number | undefined {
    return this.child?.pid
  }

  /** Starts a process in this slot with `init`; resolves once it is ready for sockets. */
  start(init: ToWorker, events: WorkerEvents): Promise<void> {
    const child = fork(workerEntry(), ['worker'], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: process.execArgv,
    })
    this.child = child
    this.ready = false
    this.startedAt = Date.now()
    child.send(init)
    // A send to a worker that has just died fails with EPIPE: it is being replaced already.
    child.on('error', () => {})
    child.on('message', (message: ToPrimary) => {
      if (this.child !== child) return
      this.heardAt = Date.now()
      if (message.t === 'ready') this.ready = true
      events.message(message)
    })
    child.on('exit', (code, signal) => {
      if (this.child !== child) return
      this.ready = false
      events.exit(code, signal)
    })
    return new Promise((resolve, reject) => {
      // One that never gets ready is killed: its exit is handled as any other (replaced).
      const timer = setTimeout(() => {
        reject(new Error(`worker ${this.id} did not start within ${START_MS} ms`))
        child.kill('SIGKILL')
      }, START_MS)
      const ready = (message: ToPrimary): void => {
        if (message.t !== 'ready') return
        clearTimeout(timer)
        child.off('message', ready)
        resolve()
      }
      child.on('message', ready)
      child.once('exit', () => {
        clearTimeout(timer)
        reject(new Error(`worker ${this.id} exited while starting`))
      })
    })
  }

  /**
   * Queues a message for the worker; false when its channel is gone. (send() itself returns
   * false also when it only has a backlog: the message is queued all the same.)
   */
  send(message: ToWorker, handle?: Socket): boolean {
    const child = this.child
    if (!child?.connected) return false
    try {
      if (handle) child.send(message, handle)
      else child.send(message)
      return true
    } catch {
      return false
    }
  }

  kill(): void {
    this.ready = false
    this.child?.kill('SIGKILL')
  }

  /** Sends `message` (close or drain) and resolves when the process has exited; killed after `timeoutMs`. */
  stop(message: ToWorker, timeoutMs: number): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      child.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      if (!this.send(message)) child.kill('SIGKILL')
    })
  }
}
