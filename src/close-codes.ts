/** WebSocket close codes tidings sends, and why. */

/** Server shutting down (RFC 6455 "going away"). */
export const CLOSE_GOING_AWAY = 1001
/** A limit was broken, e.g. too many subscriptions (RFC 6455 "policy violation"). */
export const CLOSE_POLICY = 1008
/** A frame was larger than `limits.frameBytes` (RFC 6455 "message too big"). */
export const CLOSE_TOO_BIG = 1009
/** The socket had more than `limits.slowConsumerBytes` waiting to be sent. */
export const CLOSE_SLOW_CONSUMER = 4008
/** The node is draining (restart or shutdown): reconnect, to another node, after a jittered delay. */
export const CLOSE_DRAIN = 4000
