/**
 * The benches' client fleets run in child processes driven over IPC: the parent sends
 * `{id, command}`, the child answers `{id, result}` or `{id, error}`, and says `{ready: true}`
 * once it is set up. Both sides of that conversation live here.
 */
import type { ChildProcess } from 'node:child_process'

/** How long a child may take to say it is ready. */
const READY_MS = 30_000

/** The parent's side: one child process, its readiness, and calls with a timeout each. */
export class RpcChild<Command extends { cmd: string }> {
  #next = 1
  readonly #waiting = new Map<number, { resolve(value: unknown): void; reject(e: Error): void }>()
  /** Settles when the child says it is ready; rejects if it exits or is silent first. */
  readonly ready: Promise<void>
  readonly exited: Promise<void>

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    /** The default time a call may take. */
    readonly callMs = 120_000
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()))
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start`)), READY_MS)
      child.on(
        'message',
        (message: { ready?: boolean; id?: number; result?: unknown; error?: string }) => {
          if (message.ready) {
            clearTimeout(timer)
            resolve()
            return
          }
          if (typeof message.id !== 'number') return
          const waiter = this.#waiting.get(message.id)
          this.#waiting.delete(message.id)
          if (message.error !== undefined) waiter?.reject(new Error(message.error))
          else waiter?.resolve(message.result)
        }
      )
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        const error = new Error(`${name} exited (${code ?? signal})`)
        reject(error)
        for (const waiter of this.#waiting.values()) waiter.reject(error)
        this.#waiting.clear()
      })
    })
    // A child that dies before anyone awaits `ready` is reported by the next call instead.
    this.ready.catch(() => {})
  }

  call<T>(command: Command, timeoutMs = this.callMs): Promise<T> {
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id)
        reject(new Error(`${this.name}: "${command.cmd}" timed out`))
      }, timeoutMs)
      this.#waiting.set(id, {
        resolve: (value) => {
          clearTimeout(timer)
          resolve(value as T)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      })
      this.child.send({ id, command })
    })
  }
}

/** The child's side: answers each command with `handle`'s result, then says it is ready. */
export function serveRpc<Command>(handle: (command: Command) => Promise<unknown>): void {
  process.on('message', (message: { id: number; command: Command }) => {
    handle(message.command).then(
      (result) => process.send?.({ id: message.id, result }),
      (error: unknown) => process.send?.({ id: message.id, error: String(error) })
    )
  })
  process.send?.({ ready: true })
}
