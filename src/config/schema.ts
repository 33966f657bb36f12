/**
 * The configuration file's schema: Aphlict's keys exactly as its PHP validator type-checks
 * them, plus tidings-only keys with defaults. Imports nothing but zod.
 */
import * as z from 'zod'
import { isAddressOrCidr, isOrigin } from './access.ts'

const optionalPath = z.string().nullable().optional()

export const serverSchema = z.strictObject({
  type: z.string(),
  port: z.number().int().min(0).max(65535),
  listen: z.string().nullable().optional(),
  'ssl.key': optionalPath,
  'ssl.cert': optionalPath,
  'ssl.chain': optionalPath,
})

export const logSchema = z.strictObject({ path: z.string() })

export const peerSchema = z.strictObject({
  host: z.string(),
  port: z.number().int().min(1).max(65535),
  protocol: z.string(),
  /** tidings: shared secret sent to this peer (overrides the top-level `secret`). */
  secret: z.string().min(1).optional(),
})

export const historySchema = z.strictObject({
  /** Messages kept per instance for `replay`. */
  size: z.number().int().min(0).max(1_000_000).default(4096),
  /** Milliseconds a message stays replayable. */
  age: z.number().int().min(0).max(3_600_000).default(60_000),
  /** Serialised bytes kept per instance; the oldest messages go first past it. */
  bytes: z
    .number()
    .int()
    .min(0)
    .default(16 * 1024 * 1024),
})

/**
 * Every budget a remote party can spend, with safe defaults. SECURITY.md lists each one, what
 * a client gets at the limit and the metric that counts it; keep the two in step.
 */
export const limitsSchema = z.strictObject({
  // --- admin POSTs ---
  /** Largest admin POST body; larger ones get 413 without being read whole. */
  bodyBytes: z
    .number()
    .int()
    .min(1)
    .default(1024 * 1024),
  /** Deepest nesting of arrays and objects in a POST body; deeper ones get 400 `body_too_deep`. */
  bodyDepth: z.number().int().min(2).max(1000).default(32),
  /**
   * Deliveries that may wait in sliced fan-outs; past it, admin POSTs get 503 `overloaded`
   * (Phorge then tries its next admin server; relays retry later) instead of memory growing.
   */
  fanoutBacklog: z.number().int().min(1).default(2_000_000),
  /** Sockets served per event-loop turn before a large fan-out yields. */
  fanoutSlice: z.number().int().min(1).default(2048),
  /** Live instances (with sockets or history); a new one past it gets 503 `too_many_instances`. */
  instances: z.number().int().min(1).default(10_000),
  /** Bytes of replay history across all instances; past it the oldest messages anywhere go first. */
  historyBytes: z
    .number()
    .int()
    .min(0)
    .default(64 * 1024 * 1024),

  // --- client connections, per connection ---
  /** Largest client frame; larger ones close the socket with 1009. */
  frameBytes: z
    .number()
    .int()
    .min(64)
    .default(64 * 1024),
  /** Frames one client connection may send per second (bursts up to this many); more closes it with 1008. 0: no limit. */
  framesPerSecond: z.number().int().min(0).default(100),
  /** Longest subscription id in bytes (a PHID is about 30); a longer one closes the socket with 1008. */
  idBytes: z.number().int().min(16).max(65_536).default(256),
  /** Subscriptions one connection may hold; more closes it with 1008. */
  subscriptionsPerConnection: z.number().int().min(1).default(1000),
  /** Bytes of subscription ids one connection may hold; more closes it with 1008. */
  subscriptionBytes: z
    .number()
    .int()
    .min(1024)
    .default(64 * 1024),
  /**
   * Output one socket may have waiting (this turn's batch, replays and the unsent socket
   * buffer together); a message or replay that would go past it closes the socket with 4008.
   */
  slowConsumerBytes: z
    .number()
    .int()
    .min(1024)
    .default(4 * 1024 * 1024),

  // --- client connections, per address and per process ---
  /**
   * TCP connections from one address that have not finished their WebSocket upgrade; more get
   * 429 at once. Trusted proxies are exempt. 0: no limit.
   */
  handshakesPerIp: z.number().int().min(0).default(256),
  /** Milliseconds a client connection may take to complete its upgrade before it is closed. */
  handshakeTimeout: z.number().int().min(100).max(600_000).default(10_000),
  /**
   * Open client connections per client address; more are refused with 429 before upgrading.
   * 0 (the default): no limit, because behind a reverse proxy or a NAT every browser may share
   * one address. Set it (with `trustedProxies` behind a proxy) when the client port is public.
   */
  connectionsPerIp: z.number().int().min(0).default(0),
  /** New client connections per second per client address (bursts up to this many); more get 429. 0 (default): no limit. */
  connectionsPerSecond: z.number().int().min(0).default(0),
  /**
   * Client connections the process holds at once (upgraded or not); more get 503
   * `at_capacity` and /readyz says so. 0 (the default): the process's descriptor limit less a
   * reserve for the admin port, relays and logs.
   */
  connections: z.number().int().min(0).default(0),
  /**
   * Output waiting for all sockets of the process together; past it, the sockets with the most
   * waiting are closed with 4008 until it fits.
   */
  outputBytes: z
    .number()
    .int()
    .min(1024 * 1024)
    .default(256 * 1024 * 1024),
  /** Reverse proxies (IPs or CIDR ranges) whose `X-Forwarded-For` names the client address for the per-address limits. */
  trustedProxies: z
    .array(
      z.string().refine(isAddressOrCidr, 'must be an IP address or a CIDR range like "10.0.0.0/8"')
    )
    .default([]),
})

export const websocketSchema = z.strictObject({
  /** permessage-deflate costs 3-9x memory per socket; off as in Aphlict. */
  perMessageDeflate: z.boolean().default(false),
  /** Milliseconds between server pings; a socket that misses one is dropped. 0 disables. */
  heartbeat: z.number().int().min(0).default(30_000),
})

/** tidings: how this node relays to its `cluster` peers and deduplicates what it receives. */
export const relaySchema = z.strictObject({
  /** Milliseconds one relay request may take, connect to receipt, before it counts as failed. */
  timeout: z.number().int().min(50).max(600_000).default(5000),
  /** Milliseconds to establish a connection (TCP and TLS) to a peer. */
  connectTimeout: z.number().int().min(50).max(600_000).default(2000),
  /**
   * Requests in flight per peer, and connections in its keep-alive pool. Wide enough that a
   * briefly busy peer does not turn round trips into a throughput cap (see bench:cluster).
   */
  window: z.number().int().min(1).max(64).default(16),
  /** Messages waiting per peer; past it the oldest is dropped (and counted). */
  queue: z.number().int().min(1).max(1_000_000).default(1024),
  /** Bytes of bodies waiting per peer; past it the oldest is dropped. */
  queueBytes: z
    .number()
    .int()
    .min(1024)
    .default(16 * 1024 * 1024),
  /** Milliseconds a queued message stays worth relaying; older ones are dropped. */
  maxAge: z.number().int().min(100).max(3_600_000).default(30_000),
  /** First retry delay in ms; doubles per consecutive failure (full jitter), up to retryMax. */
  retryBase: z.number().int().min(1).max(600_000).default(200),
  retryMax: z.number().int().min(1).max(3_600_000).default(30_000),
  /** Consecutive failures that open a peer's circuit (log line, one probe at a time). */
  failures: z.number().int().min(1).max(1000).default(3),
  /** Message identities remembered for deduplication; 0 turns deduplication off. */
  dedupSize: z.number().int().min(0).max(10_000_000).default(100_000),
  /** Milliseconds an identity is remembered; must cover maxAge. */
  dedupAge: z.number().int().min(1000).max(86_400_000).default(120_000),
  /** PEM file of extra CA certificates trusted for https peers (system CAs stay trusted). */
  ca: z.string().min(1).nullable().optional(),
  /** Accept admin POSTs from loopback addresses without the secret (Phorge cannot send it). */
  trustLoopback: z.boolean().default(false),
  /** Milliseconds shutdown waits for queued relays to go out. */
  flushTimeout: z.number().int().min(0).max(60_000).default(2000),
})

/** tidings: how SIGTERM (and `tidings stop`) drains client sockets before the node exits. */
export const drainSchema = z.strictObject({
  /** Milliseconds over which client sockets are closed with 4000; 0 closes them all at once. */
  window: z.number().int().min(0).max(600_000).default(10_000),
  /** Groups the sockets are closed in, each at a random moment of its own slice of the window. */
  waves: z.number().int().min(1).max(10_000).default(20),
  /**
   * What SIGTERM does on a lone node (no `cluster` peers, no `backplane`): `close` its
   * sockets at once (1001) and stop — there is nowhere else for clients to go, so a drain
   * would only make the outage longer — or `drain` as any node does.
   */
  lone: z.enum(['close', 'drain']).default('close'),
})

/**
 * tidings: a broker every node talks to, beside (or instead of) the `cluster` relay. See
 * src/backplane/ and the README's "Scaling out on Redis". `url` (redis) or `nodes`
 * (redis-cluster) is checked in parse.ts, which names the one that is wrong.
 */
export const backplaneSchema = z.strictObject({
  type: z.enum(['redis', 'redis-cluster']),
  /** `redis://[user[:password]@]host[:port][/db]` or `rediss://…` (TLS), for type redis. */
  url: z.string().min(1).optional(),
  /** Some of the cluster's nodes, as URLs like `url`, for type redis-cluster. */
  nodes: z.array(z.string().min(1)).min(1).optional(),
  /** ACL user and password, when not in the URL(s). */
  username: z.string().min(1).optional(),
  password: z.string().min(1).optional(),
  /** Put before every key and channel, so several fleets can share one Redis. */
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9:._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 : . _ -')
    .default('tidings:'),
  /** Milliseconds to connect (TCP, TLS and AUTH) to a Redis node. */
  connectTimeout: z.number().int().min(100).max(60_000).default(5000),
  /** Milliseconds one command may take before it counts as failed. */
  commandTimeout: z.number().int().min(100).max(60_000).default(2000),
  /** Messages kept while Redis cannot be reached, published when it can; oldest dropped past it. */
  buffer: z.number().int().min(0).max(1_000_000).default(10_000),
  /** Bytes of those messages. */
  bufferBytes: z
    .number()
    .int()
    .min(0)
    .default(16 * 1024 * 1024),
  /**
   * What a node subscribes to: `instance` (one channel per instance it has sockets for) or
   * `subscriber` (one channel per subscriber id its sockets have; a message is published to
   * each of its ids). See the README for when each wins.
   */
  routing: z.enum(['instance', 'subscriber']).default('instance'),
})

export const configSchema = z.strictObject({
  servers: z.array(z.unknown()),
  logs: z.array(z.unknown()).optional(),
  cluster: z.array(z.unknown()).optional(),
  pidfile: z.string().optional(),
  'memory.hint': z.number().int().min(0).optional(),
  history: historySchema.prefault({}),
  limits: limitsSchema.prefault({}),
  websocket: websocketSchema.prefault({}),
  /**
   * Browser origins allowed to open client WebSockets, e.g. ["https://phorge.example.org"];
   * an upgrade with any other `Origin` gets 403. Absent or null (the default): any origin.
   */
  origins: z
    .array(
      z
        .string()
        .refine(
          isOrigin,
          'must be an origin like "https://phorge.example.org" (scheme, lower-case host and port only, no path or trailing slash)'
        )
    )
    .min(1)
    .nullable()
    .optional(),
  /** Shared secret required on admin POSTs and relays when set. */
  secret: z.string().min(1).nullable().optional(),
  relay: relaySchema.prefault({}),
  drain: drainSchema.prefault({}),
  backplane: backplaneSchema.nullable().optional(),
  /**
   * Processes serving the node (Node only): 1, a number, or "auto" (the cores available).
   * More than one: a primary holds the admin port, relay and backplane; workers hold the
   * client sockets.
   */
  processes: z.union([z.number().int().min(1).max(64), z.literal('auto')]).default(1),
})

export type ServerEntry = z.infer<typeof serverSchema>
export type LogEntry = z.infer<typeof logSchema>
export type PeerEntry = z.infer<typeof peerSchema>
export type HistoryOptions = z.infer<typeof historySchema>
export type Limits = z.infer<typeof limitsSchema>
export type WebSocketOptions = z.infer<typeof websocketSchema>
export type RelayOptions = z.infer<typeof relaySchema>
export type DrainOptions = z.infer<typeof drainSchema>
export type BackplaneOptions = z.infer<typeof backplaneSchema>

/** A configuration that passed every check, with defaults filled in. */
export type Config = Omit<z.infer<typeof configSchema>, 'servers' | 'logs' | 'cluster'> & {
  servers: ServerEntry[]
  logs: LogEntry[]
  cluster: PeerEntry[]
}
