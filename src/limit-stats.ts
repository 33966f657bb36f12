/**
 * How often each limit refused a client, one counter per limit, for /metrics and logs.
 * One object per node (`Tidings.limited`); the core and the adapters increment it.
 * (Slow-consumer closes are counted by the hub, in `Hub.stats.slowConsumerCloses`.)
 */
export interface LimitStats {
  /** Upgrades refused with 429: too many open connections from one client address. */
  connectionsPerIp: number
  /** Upgrades refused with 429: too many new connections per second from one client address. */
  connectionsPerSecond: number
  /** Upgrades refused with 403: an `Origin` header not in `origins`. */
  origin: number
  /** Sockets closed with 1008: past `limits.subscriptionsPerConnection`. */
  subscriptions: number
  /** Sockets closed with 1008: past `limits.framesPerSecond`. */
  framesPerSecond: number
  /** Sockets closed with 1009: a frame larger than `limits.frameBytes`. */
  frameBytes: number
  /** Admin POSTs refused with 413: a body larger than `limits.bodyBytes`. */
  bodyBytes: number
  /** Admin POSTs refused with 503: more than `limits.fanoutBacklog` deliveries queued. */
  fanoutBacklog: number
}

export function newLimitStats(): LimitStats {
  return {
    connectionsPerIp: 0,
    connectionsPerSecond: 0,
    origin: 0,
    subscriptions: 0,
    framesPerSecond: 0,
    frameBytes: 0,
    bodyBytes: 0,
    fanoutBacklog: 0,
  }
}
