/** The browser client's public types: options, status events and the client itself. */
import type { TidingsMessage } from './message.ts'

/** The part of the standard WebSocket the client uses. */
export interface WebSocketLike {
  readonly readyState: number
  onopen: ((event: Event) => void) | null
  onmessage: ((event: MessageEvent) => void) | null
  onclose: ((event: CloseEvent) => void) | null
  onerror: ((event: Event) => void) | null
  send(data: string): void
  close(code?: number, reason?: string): void
}

export type WebSocketConstructor = new (url: string) => WebSocketLike

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export interface BackoffOptions {
  /** Upper bound of the first delay; each failed attempt doubles it. @default 1000 */
  baseMs?: number
  /** Largest upper bound. @default 30000 */
  capMs?: number
  /** A connection open this long counts as good: the next delay starts from `baseMs` again. @default 5000 */
  resetAfterMs?: number
}

export interface ClientOptions {
  /** Client server URLs (`ws://` or `wss://`, with the `/~instance/` path if any). */
  servers: readonly string[]
  /** Subscriber ids to subscribe to from the start. */
  subscriptions?: readonly string[]
  backoff?: BackoffOptions
  /** The servers' replay window (their `history.age`), ms. @default 60000 */
  replayWindowMs?: number
  /** Ping interval, ms; a connection that stays silent for a whole interval after a ping is dropped. 0 disables. @default 15000 */
  pingIntervalMs?: number
  /** How long a connection attempt may take to open, ms. @default 10000 */
  connectTimeoutMs?: number
  /** How many recent `uniqueID`s are remembered to drop repeats. @default 1024 */
  dedupSize?: number
  /** @default globalThis.WebSocket */
  WebSocket?: WebSocketConstructor
  /** @default the global setTimeout / clearTimeout */
  timers?: Timers
  /** Random numbers in [0, 1), for server choice and jitter. @default Math.random */
  random?: () => number
  /** Clock in ms. @default Date.now */
  now?: () => number
}

/**
 * `connecting`: an attempt to `url` is under way; `open`: connected to `url`;
 * `reconnecting`: the connection to `url` ended (`code`, `reason`) and the next attempt, to
 * `next`, starts in `delayMs`; `closed`: stopped, by `close()` or a close code that retrying
 * would only repeat (1008, 1009).
 */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface ClientStatus {
  state: ClientState
  url: string | undefined
  code?: number
  reason?: string
  delayMs?: number
  next?: string
}

export interface TidingsClient {
  /** Adds subscriptions (sent now if connected, and again after every reconnect). */
  subscribe(ids: string | readonly string[]): void
  /** Removes subscriptions. */
  unsubscribe(ids: string | readonly string[]): void
  /** Listens for messages (each `uniqueID` once) or status changes; returns the unsubscribe function. */
  on(event: 'message', listener: (message: TidingsMessage) => void): () => void
  on(event: 'status', listener: (status: ClientStatus) => void): () => void
  /** Stops: closes the socket (1000) and cancels any reconnect. */
  close(): void
  /** Connects now to a random server, e.g. after `closed` or when the network comes back. */
  reconnect(): void
  /** The latest status. */
  readonly status: ClientStatus
  /** The current subscriptions. */
  readonly subscriptions: readonly string[]
}
