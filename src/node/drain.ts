/**
 * Graceful drain: close every client socket with 4000 ("draining": reconnect, to another
 * node, after a jittered delay) in randomised waves spread over a window, so a restart
 * does not send every browser back at the same moment.
 *
 * Sockets are shuffled, split into `waves` near-equal groups, and wave i fires at a random
 * moment inside the i-th of `waves` equal slots of the window: the waves are in order, no
 * two share a slot, and the last one fires before the window ends.
 */
import { CLOSE_DRAIN, CLOSE_REASONS } from '../close-codes.ts'
import type { Connection } from '../hub/connection.ts'

export const DRAIN_REASON = CLOSE_REASONS.drain

export interface Wave {
  /** Milliseconds after the drain started. */
  at: number
  /** How many sockets this wave closes. */
  count: number
}

export interface DrainPlanOptions {
  windowMs: number
  waves: number
  /** [0, 1); Math.random by default. */
  random?: () => number
}

/** When each wave fires and how many sockets it closes; `count` sockets in all. */
export function planWaves(count: number, options: DrainPlanOptions): Wave[] {
  if (count <= 0) return []
  const random = options.random ?? Math.random
  const waves = Math.max(1, Math.min(Math.floor(options.waves), count))
  const windowMs = Math.max(0, options.windowMs)
  const slot = windowMs / waves
  const base = Math.floor(count / waves)
  const extra = count % waves
  const plan: Wave[] = []
  for (let i = 0; i < waves; i++) {
    plan.push({
      at: Math.floor(i * slot + random() * slot),
      count: base + (i < extra ? 1 : 0),
    })
  }
  return plan
}

/** Fisher-Yates, in place. */
export function shuffle<T>(items: T[], random: () => number = Math.random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const swap = items[i] as T
    items[i] = items[j] as T
    items[j] = swap
  }
  return items
}

export interface DrainTimers {
  setTimeout(task: () => void, ms: number): unknown
}

export interface DrainResult {
  /** Sockets closed with 4000 (those that left by themselves first are not counted). */
  closed: number
  waves: number
}

/**
 * Closes `connections` in the planned waves through `close` (which must detach the
 * connection from the hub and close its socket). Resolves after the last wave.
 */
export function closeInWaves(
  connections: readonly Connection[],
  options: DrainPlanOptions,
  close: (connection: Connection) => void,
  timers: DrainTimers = globalThis
): Promise<DrainResult> {
  const random = options.random ?? Math.random
  const order = shuffle([...connections], random)
  const plan = planWaves(order.length, { ...options, random })
  if (plan.length === 0) return Promise.resolve({ closed: 0, waves: 0 })
  let next = 0
  let closed = 0
  let fired = 0
  return new Promise((resolve) => {
    for (const wave of plan) {
      const from = next
      next += wave.count
      timers.setTimeout(() => {
        for (let i = from; i < from + wave.count; i++) {
          const connection = order[i] as Connection
          if (!connection.open) continue
          close(connection)
          closed++
        }
        fired++
        if (fired === plan.length) resolve({ closed, waves: plan.length })
      }, wave.at)
    }
  })
}

/** The close every drained socket gets. */
export function drainClose(
  disconnect: (connection: Connection) => void
): (connection: Connection) => void {
  return (connection) => {
    disconnect(connection)
    connection.socket.close(CLOSE_DRAIN, DRAIN_REASON)
  }
}
