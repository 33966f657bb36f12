/**
 * Rate-limited log lines for anything a remote party can trigger (refused upgrades, 401s,
 * bad requests, limit closes, peer fingerprint changes): at most one line per kind per
 * interval, and the lines in between are counted, not written. The next line of that kind
 * says how many were left out; `flush()` (called on the node's sweep) says it for kinds that
 * went quiet. Keys name kinds (a bounded set), never client addresses.
 */
import type { Clock, Logger } from './ports.ts'

/** Default: one line per kind every 10 seconds. */
export const LOG_INTERVAL_MS = 10_000

interface Kind {
  /** When the last line of this kind was written. */
  at: number
  /** Lines left out since then. */
  skipped: number
  level: 'log' | 'warn'
  last: string
}

export class LogLimiter {
  readonly #kinds = new Map<string, Kind>()

  constructor(
    readonly logger: Logger,
    private readonly clock: Clock,
    readonly intervalMs = LOG_INTERVAL_MS
  ) {}

  log(kind: string, message: string): void {
    this.#write('log', kind, message)
  }

  warn(kind: string, message: string): void {
    this.#write('warn', kind, message)
  }

  /** Lines left out so far for `kind` (tests, metrics). */
  skipped(kind: string): number {
    return this.#kinds.get(kind)?.skipped ?? 0
  }

  /** Writes one summary line for each kind that left lines out and has been quiet for an interval. */
  flush(): void {
    const now = this.clock.now()
    for (const [name, kind] of this.#kinds) {
      if (now - kind.at < this.intervalMs) continue
      if (kind.skipped > 0) {
        this.logger[kind.level](
          `… and ${kind.skipped} more like this in the last ${Math.round((now - kind.at) / 1000)} s: ${kind.last}`
        )
      }
      this.#kinds.delete(name)
    }
  }

  #write(level: 'log' | 'warn', name: string, message: string): void {
    const now = this.clock.now()
    const kind = this.#kinds.get(name)
    if (kind && now - kind.at < this.intervalMs) {
      kind.skipped++
      kind.last = message
      return
    }
    const more =
      kind && kind.skipped > 0
        ? ` (… and ${kind.skipped} more like this since the last such line)`
        : ''
    this.logger[level](`${message}${more}`)
    this.#kinds.set(name, { at: now, skipped: 0, level, last: message })
  }
}
