/**
 * How the browser client reacts to a lost connection: which close codes mean "go elsewhere",
 * which mean "stop", and the full-jitter backoff delay.
 */
import {
  CLOSE_DRAIN,
  CLOSE_GOING_AWAY,
  CLOSE_POLICY,
  CLOSE_SLOW_CONSUMER,
  CLOSE_TOO_BIG,
} from '../src/close-codes.ts'

/**
 * Close codes meaning "this server is going away: reconnect elsewhere": 1001 (shutdown),
 * 1012 (restart), 1013 (try again later) and 4000-4099 (4000: drain), except 4008.
 */
export function isReconnectElsewhere(code: number): boolean {
  return (
    code === CLOSE_GOING_AWAY ||
    code === 1012 ||
    code === 1013 ||
    (code >= CLOSE_DRAIN && code < CLOSE_DRAIN + 100 && code !== CLOSE_SLOW_CONSUMER)
  )
}

/**
 * Close codes after which reconnecting would only be refused again: 1008 (policy, e.g. too
 * many subscriptions) and 1009 (a frame over the server's size limit).
 */
export function isFatalClose(code: number): boolean {
  return code === CLOSE_POLICY || code === CLOSE_TOO_BIG
}

/** The full-jitter delay for the `attempt`-th consecutive failure (0-based): uniform in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number
): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt))
}
