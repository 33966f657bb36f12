/**
 * What a runtime provides to reach the broker (Node: adapters/node/redis-broker.ts, on
 * node-redis). The backplane (backplane.ts) owns the policy — what to publish and keep,
 * buffering, interest, replay, status — and asks the broker only for these operations.
 */

/** One entry of a history stream: its id (broker time `<ms>-<seq>`) and payload. */
export interface StreamEntry {
  readonly id: string
  readonly payload: Uint8Array
}

/** What the broker tells the backplane. */
export interface BrokerEvents {
  /** A payload arrived on a subscribed channel. */
  message(channel: string, payload: Uint8Array): void
  /** The connection was lost (or a command timed out): `reason` says why. */
  down(reason: string): void
  /** Connected again, with every subscription restored. */
  up(): void
}

export interface Broker {
  /**
   * Connects and checks the broker is what the configuration says (a cluster for
   * `redis-cluster`). Rejects with an Error whose message names the cause (refused,
   * authentication, not a cluster, timed out); nothing is left open then.
   */
  connect(): Promise<void>
  /** Publishes to a channel (sharded on Redis Cluster). Resolves with the shard it went to. */
  publish(channel: string, payload: Uint8Array): Promise<string>
  /** Appends to a stream, trimmed to about `maxLen` entries. */
  append(stream: string, payload: Uint8Array, maxLen: number): Promise<void>
  /** Drops entries older than `beforeMs` (broker clock) from a stream. */
  trim(stream: string, beforeMs: number): Promise<void>
  /** Up to `count` entries with ids from `start` (inclusive, `<ms>` or `<ms>-<seq>`), oldest first. */
  range(stream: string, start: string, count: number): Promise<StreamEntry[]>
  /** Subscribes to channels; subscriptions survive reconnects (the broker restores them). */
  subscribe(channels: readonly string[]): Promise<void>
  unsubscribe(channels: readonly string[]): Promise<void>
  /** Sets `key` to `value` unless it has a value; resolves with the value now in force. */
  claim(key: string, value: string): Promise<string>
  /** The broker's clock, ms since the epoch. */
  time(): Promise<number>
  /** Closes every connection. */
  close(): Promise<void>
}

/** Builds the runtime's broker for the node's `backplane` config. */
export type BrokerFactory = (events: BrokerEvents) => Broker
