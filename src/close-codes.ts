/**
 * WebSocket close codes tidings sends, and the coded reasons that go with them: one place
 * for every close a client can get (SECURITY.md lists them with the limit behind each).
 */

/** Server shutting down (RFC 6455 "going away"). */
export const CLOSE_GOING_AWAY = 1001
/** A limit was broken, e.g. too many subscriptions (RFC 6455 "policy violation"). */
export const CLOSE_POLICY = 1008
/** A frame was larger than `limits.frameBytes` (RFC 6455 "message too big"). */
export const CLOSE_TOO_BIG = 1009
/** The socket's waiting output would pass its budget (or the process's). */
export const CLOSE_SLOW_CONSUMER = 4008
/** The node is draining (restart or shutdown): reconnect, to another node, after a jittered delay. */
export const CLOSE_DRAIN = 4000

/** The reason sent with each close, by the limit (or event) behind it. */
export const CLOSE_REASONS = {
  subscriptionsPerConnection: 'subscription_limit',
  subscriptionBytes: 'subscription_bytes',
  idBytes: 'id_too_long',
  framesPerSecond: 'frame_rate',
  frameBytes: 'frame_too_big',
  slowConsumerBytes: 'slow_consumer',
  outputBytes: 'output_budget',
  drain: 'draining',
  shutdown: 'server shutting down',
} as const

/** A limit that closes the socket with 1008. */
export type PolicyLimit =
  | 'subscriptionsPerConnection'
  | 'subscriptionBytes'
  | 'idBytes'
  | 'framesPerSecond'
