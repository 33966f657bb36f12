/**
 * `tidings/browser`: a resilient WebSocket client for tidings (and Aphlict) client servers.
 *
 * Given a list of client URLs it connects to one at random, and when the connection ends it
 * reconnects to a random other one after a full-jitter exponential backoff. After every
 * (re)connect it re-sends its subscriptions, and after a reconnect it asks for a `replay` of
 * what it missed; repeats (replays, cluster copies) are dropped by `uniqueID`. A ping every
 * 15 s keeps idle connections open through proxies and detects dead ones.
 *
 * No dependencies and web standards only; the WebSocket constructor, timers, clock and random
 * source are injectable for tests.
 */
import { idList, readOptions } from './browser-options.ts'
import type { ClientOptions, ClientStatus, TidingsClient, WebSocketLike } from './browser-types.ts'
import type { TidingsMessage } from './message.ts'
import { RecentIds } from './recent-ids.ts'
import { backoffDelay, isFatalClose, isReconnectElsewhere } from './reconnect-policy.ts'

export type * from './browser-types.ts'
export type { ClientErrorCode } from './errors.ts'
export { TidingsClientError } from './errors.ts'
export type { TidingsMessage } from './message.ts'
export { backoffDelay, isFatalClose, isReconnectElsewhere } from './reconnect-policy.ts'

/** Extra replay age covering messages in flight when the last one arrived; repeats are dropped by `uniqueID`. */
const REPLAY_SLACK_MS = 1000
/** Ids per subscribe frame, well under the servers' frame limit. */
const SUBSCRIBE_CHUNK = 256
const OPEN = 1
/** How long a server that closed with a "reconnect elsewhere" code is avoided. */
const AVOID_MS = 60_000
/** The code reported when a connection ends without a close frame (failed attempt, timeout, no pong). */
const ABNORMAL = 1006

function ignore(): void {}

export function createClient(options: ClientOptions): TidingsClient {
  const settings = readOptions(options)
  const { servers, baseMs, capMs, resetAfterMs, replayWindowMs, pingIntervalMs } = settings
  const { connectTimeoutMs, Socket, timers, random, now } = settings
  const subscriptions = new Set(settings.initial)
  const messageListeners = new Set<(message: TidingsMessage) => void>()
  const statusListeners = new Set<(status: ClientStatus) => void>()
  const seen = new RecentIds(settings.dedupSize)
  /** Servers that closed with a "reconnect elsewhere" code, and until when to avoid them. */
  const goingAway = new Map<string, number>()

  const startedAt = now()
  let status: ClientStatus = { state: 'connecting', url: undefined }
  let socket: WebSocketLike | undefined
  let url: string | undefined
  let openedAt: number | undefined
  let lastSeenAt: number | undefined
  let failures = 0
  let attempts = 0
  let replayOnOpen = false
  let silent = false
  let stopped = false
  let timer: unknown
  let pingTimer: unknown

  function report(next: ClientStatus): void {
    status = next
    for (const listener of statusListeners) call(listener, next)
  }

  function call<T>(listener: (value: T) => void, value: T): void {
    try {
      listener(value)
    } catch (error) {
      // A listener's bug must not break delivery to the others or the connection.
      if (typeof reportError === 'function') reportError(error)
      else console.error(error)
    }
  }

  function send(frame: unknown): void {
    if (socket?.readyState === OPEN) socket.send(JSON.stringify(frame))
  }

  function sendSubscriptions(command: 'subscribe' | 'unsubscribe', ids: readonly string[]): void {
    for (let i = 0; i < ids.length; i += SUBSCRIBE_CHUNK) {
      send({ command, data: ids.slice(i, i + SUBSCRIBE_CHUNK) })
    }
  }

  /** Forgets the current socket: no more events from it, timers cleared, closed if still live. */
  function release(): void {
    timers.clearTimeout(timer)
    timers.clearTimeout(pingTimer)
    const old = socket
    socket = undefined
    if (!old) return
    old.onopen = old.onmessage = old.onclose = null
    // Not null: a socket closed while connecting reports an error, and outside browsers (the
    // `ws` package) an error nobody listens to is thrown.
    old.onerror = ignore
    try {
      if (old.readyState <= OPEN) old.close(1000)
    } catch {}
  }

  /**
   * A random server: not `last` (the one just lost) and none that said "going away" in the
   * last AVOID_MS, unless that leaves nothing.
   */
  function pick(last: string | undefined): string {
    const at = now()
    const others = servers.filter((server) => server !== last)
    const preferred = others.filter((server) => !((goingAway.get(server) ?? 0) > at))
    const choices = preferred.length > 0 ? preferred : others.length > 0 ? others : servers
    return choices[Math.floor(random() * choices.length)] ?? (choices[0] as string)
  }

  function connect(target: string): void {
    release()
    url = target
    openedAt = undefined
    const attempt = ++attempts
    report({ state: 'connecting', url: target })
    if (stopped || attempt !== attempts) return // a status listener called close() or reconnect()
    let ws: WebSocketLike
    try {
      ws = new Socket(target)
    } catch (error) {
      lost(ABNORMAL, `cannot connect: ${(error as Error).message}`)
      return
    }
    socket = ws
    ws.onopen = opened
    ws.onmessage = (event) => received(event.data)
    ws.onclose = (event) => lost(event.code, event.reason)
    // An error is always followed by a close, which is what counts.
    ws.onerror = ignore
    timer = timers.setTimeout(() => lost(ABNORMAL, 'connect timed out'), connectTimeoutMs)
  }

  function opened(): void {
    timers.clearTimeout(timer)
    openedAt = now()
    silent = false
    sendSubscriptions('subscribe', [...subscriptions])
    if (replayOnOpen && subscriptions.size > 0) {
      const since = lastSeenAt ?? startedAt
      const age = Math.min(replayWindowMs, Math.max(1, now() - since + REPLAY_SLACK_MS))
      send({ command: 'replay', data: { age } })
    }
    schedulePing()
    report({ state: 'open', url })
  }

  function schedulePing(): void {
    if (pingIntervalMs === 0) return
    pingTimer = timers.setTimeout(() => {
      if (silent) {
        lost(ABNORMAL, 'no answer to ping')
        return
      }
      silent = true
      send({ command: 'ping', data: null })
      schedulePing()
    }, pingIntervalMs)
  }

  function received(data: unknown): void {
    silent = false
    if (typeof data !== 'string') return
    let message: unknown
    try {
      message = JSON.parse(data)
    } catch {
      return
    }
    if (message === null || typeof message !== 'object' || Array.isArray(message)) return
    const { type, uniqueID } = message as TidingsMessage
    if (type === 'pong') return
    lastSeenAt = now()
    if (typeof uniqueID === 'string' && !seen.add(uniqueID)) return
    for (const listener of messageListeners) call(listener, message as TidingsMessage)
  }

  /** The connection (or attempt) ended without `close()`: reconnect, unless retrying is futile. */
  function lost(code: number, reason: string): void {
    const from = url
    const good = openedAt !== undefined && now() - openedAt >= resetAfterMs
    release()
    replayOnOpen = true
    if (isFatalClose(code)) {
      report({ state: 'closed', url: from, code, reason })
      return
    }
    if (from !== undefined && isReconnectElsewhere(code)) goingAway.set(from, now() + AVOID_MS)
    if (good) failures = 0
    const delayMs = backoffDelay(failures++, baseMs, capMs, random)
    const next = pick(from)
    // Scheduled before reporting, so a status listener's close() or reconnect() cancels it.
    timer = timers.setTimeout(() => connect(next), delayMs)
    report({ state: 'reconnecting', url: from, code, reason, delayMs, next })
  }

  queueMicrotask(() => {
    if (!stopped && !socket && status.state === 'connecting') connect(pick(undefined))
  })

  return {
    subscribe(ids) {
      const fresh = idList(ids, 'subscribe').filter((id) => !subscriptions.has(id))
      for (const id of fresh) subscriptions.add(id)
      sendSubscriptions('subscribe', fresh)
    },
    unsubscribe(ids) {
      const gone = idList(ids, 'unsubscribe').filter((id) => subscriptions.delete(id))
      sendSubscriptions('unsubscribe', gone)
    },
    on(event: 'message' | 'status', listener: (value: never) => void) {
      const listeners = (event === 'message' ? messageListeners : statusListeners) as Set<unknown>
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    close() {
      if (stopped) return
      stopped = true
      replayOnOpen = true
      release()
      report({ state: 'closed', url, code: 1000, reason: 'closed by the client' })
    },
    reconnect() {
      stopped = false
      connect(pick(undefined))
    },
    get status() {
      return status
    },
    get subscriptions() {
      return [...subscriptions]
    },
  }
}
