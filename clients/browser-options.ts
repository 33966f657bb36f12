/**
 * Reading and checking `createClient`'s options: every mistake is a TidingsClientError
 * naming the option, thrown before anything connects.
 */
import type { ClientOptions, Timers, WebSocketConstructor } from './browser-types.ts'
import { invalidOption, TidingsClientError } from './errors.ts'

const defaultTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
}

function checkPositive(
  name: string,
  value: number | undefined,
  fallback: number,
  zero = false
): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0 || (zero && value === 0)) || value === Infinity) {
    invalidOption(
      name,
      `must be a ${zero ? 'non-negative' : 'positive'} number, got ${String(value)}.`
    )
  }
  return value
}

export function idList(ids: string | readonly string[], method: string): string[] {
  const list = typeof ids === 'string' ? [ids] : ids
  if (!Array.isArray(list) || !list.every((id) => typeof id === 'string')) {
    throw new TidingsClientError(
      'options_invalid',
      `${method}() takes a subscriber id or a list of ids (strings).`
    )
  }
  return list
}

/** The options with their defaults, checked. */
export function readOptions(options: ClientOptions) {
  if (!Array.isArray(options?.servers) || options.servers.length === 0) {
    invalidOption('servers', 'must be a non-empty list of ws:// or wss:// URLs.')
  }
  const servers = options.servers.map((server, index) => {
    let url: URL | undefined
    try {
      url = new URL(server)
    } catch {}
    if (url?.protocol !== 'ws:' && url?.protocol !== 'wss:') {
      invalidOption(`servers[${index}]`, `must be a ws:// or wss:// URL, got "${String(server)}".`)
    }
    return server
  })
  const backoff = options.backoff ?? {}
  const baseMs = checkPositive('backoff.baseMs', backoff.baseMs, 1000)
  const capMs = checkPositive('backoff.capMs', backoff.capMs, 30_000)
  const resetAfterMs = checkPositive('backoff.resetAfterMs', backoff.resetAfterMs, 5000, true)
  const replayWindowMs = checkPositive('replayWindowMs', options.replayWindowMs, 60_000)
  const pingIntervalMs = checkPositive('pingIntervalMs', options.pingIntervalMs, 15_000, true)
  const connectTimeoutMs = checkPositive('connectTimeoutMs', options.connectTimeoutMs, 10_000)
  const dedupSize = Math.max(1, Math.floor(checkPositive('dedupSize', options.dedupSize, 1024)))
  const Socket = options.WebSocket ?? (globalThis.WebSocket as WebSocketConstructor | undefined)
  if (typeof Socket !== 'function')
    invalidOption('WebSocket', 'is required where there is no global WebSocket.')
  const timers = options.timers ?? defaultTimers
  const random = options.random ?? Math.random
  const now = options.now ?? Date.now

  const initial = options.subscriptions ?? []
  if (!Array.isArray(initial) || !initial.every((id) => typeof id === 'string')) {
    invalidOption('subscriptions', 'must be a list of subscriber ids (strings).')
  }
  return {
    servers,
    baseMs,
    capMs,
    resetAfterMs,
    replayWindowMs,
    pingIntervalMs,
    connectTimeoutMs,
    dedupSize,
    Socket: Socket as WebSocketConstructor,
    timers,
    random,
    now,
    initial,
  }
}
