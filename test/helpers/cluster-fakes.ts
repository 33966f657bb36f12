/** Fakes for relay unit tests: a clock with timers you advance by hand, and a scripted transport. */
import type {
  ClientSocket,
  Clock,
  Logger,
  Outbound,
  PeerAddress,
  PeerReply,
  PeerTransport,
  Scheduler,
} from '../../src/ports.ts'
import type { TimerHandle, Timers } from '../../src/relay/timers.ts'

/** A clock and its timers: nothing happens until `advance()`; tasks run in time order. */
export class FakeTime implements Clock, Timers {
  time = 1_000_000
  #nextId = 1
  readonly #tasks = new Map<number, { at: number; task: () => void }>()

  now(): number {
    return this.time
  }

  setTimeout(task: () => void, ms: number): TimerHandle {
    const id = this.#nextId++
    this.#tasks.set(id, { at: this.time + Math.max(0, ms), task })
    return id
  }

  clearTimeout(handle: TimerHandle): void {
    this.#tasks.delete(handle as number)
  }

  get pending(): number {
    return this.#tasks.size
  }

  /** The delays (from now) of the pending timers, soonest first. */
  delays(): number[] {
    return [...this.#tasks.values()].map((t) => t.at - this.time).sort((a, b) => a - b)
  }

  /** Moves time forward by `ms`, running every task that falls due (and settling promises). */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms
    for (;;) {
      await settle()
      let nextId: number | undefined
      let next: { at: number; task: () => void } | undefined
      for (const [id, entry] of this.#tasks) {
        if (entry.at <= until && (!next || entry.at < next.at)) {
          next = entry
          nextId = id
        }
      }
      if (!next || nextId === undefined) break
      this.#tasks.delete(nextId)
      this.time = next.at
      next.task()
    }
    this.time = until
    await settle()
  }
}

/** Lets pending promise callbacks run. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve()
}

/** One request the fake transport received, with the means to answer it. */
export interface FakeCall {
  peer: PeerAddress
  instance: string
  text: string
  body: Uint8Array
  /** What the relay said the message waited, ms. */
  queuedMs: number | undefined
  signal: AbortSignal
  resolve(reply: PeerReply): void
  reject(error: Error): void
}

/**
 * Records every post. By default each call stays pending until the test answers it; set
 * `auto` to answer immediately (a reply, or an Error to reject with).
 */
export class FakeTransport implements PeerTransport {
  readonly calls: FakeCall[] = []
  readonly pending = new Set<FakeCall>()
  auto: ((call: FakeCall) => PeerReply | Error) | undefined
  closed = false

  /** Peers said hello to, in order (origin, fingerprint). */
  readonly hellos: [string, string][] = []

  post(
    peer: PeerAddress,
    instance: string,
    body: Uint8Array,
    signal: AbortSignal,
    queuedMs?: number
  ) {
    return new Promise<PeerReply>((resolve, reject) => {
      const call: FakeCall = {
        peer,
        instance,
        body,
        queuedMs,
        text: new TextDecoder().decode(body),
        signal,
        resolve: (reply) => {
          this.pending.delete(call)
          resolve(reply)
        },
        reject: (error) => {
          this.pending.delete(call)
          reject(error)
        },
      }
      signal.addEventListener('abort', () => call.reject(signal.reason as Error), { once: true })
      this.calls.push(call)
      this.pending.add(call)
      const answer = this.auto?.(call)
      if (answer instanceof Error) call.reject(answer)
      else if (answer) call.resolve(answer)
    })
  }

  async hello(peer: PeerAddress, fingerprint: string): Promise<void> {
    this.hellos.push([peer.origin, fingerprint])
  }

  async close(): Promise<void> {
    this.closed = true
  }

  callsTo(origin: string): FakeCall[] {
    return this.calls.filter((call) => call.peer.origin === origin)
  }
}

export const receipt = (fingerprint: string, status = 200): PeerReply => ({
  status,
  body: JSON.stringify({ fingerprint }),
})

/** Runs deferred tasks right away (microtask), like setImmediate but synchronous enough for tests. */
export const microScheduler: Scheduler = { defer: (task) => queueMicrotask(task) }

export class LogLines implements Logger {
  readonly lines: string[] = []
  readonly tracing = false
  log(message: string): void {
    this.lines.push(message)
  }
  warn(message: string): void {
    this.lines.push(`warn: ${message}`)
  }
  trace(): void {}
}

/** A client socket that keeps what it was sent. */
export class RecordingSocket implements ClientSocket {
  readonly sent: string[] = []
  pending = 0
  sendMessage(message: Outbound): void {
    this.sent.push(message.text)
  }
  close(): void {}
  frames(): Record<string, unknown>[] {
    return this.sent.map((text) => JSON.parse(text) as Record<string, unknown>)
  }
}
