/**
 * How often each limit refused or closed a client, one counter per limit (the names of the
 * `limits.*` keys, plus `origin`), for /metrics (`tidings_limit_refusals_total{limit=…}`)
 * and /stats.json. One object per node (`Tidings.limited`); the core increments it.
 */
export interface LimitStats {
  // Before the upgrade (HTTP answers)
  /** 503 `at_capacity`: the process holds `limits.connections` client connections. */
  connections: number
  /** 429 `too_many_handshakes`: one address has `limits.handshakesPerIp` upgrades in progress. */
  handshakesPerIp: number
  /** Closed: the upgrade did not complete within `limits.handshakeTimeout`. */
  handshakeTimeout: number
  /** 429 `too_many_connections`: too many open connections from one client address. */
  connectionsPerIp: number
  /** 429 `rate_limited`: too many new connections per second from one client address. */
  connectionsPerSecond: number
  /** 403 `origin_not_allowed`: an `Origin` header not in `origins`. */
  origin: number
  /** 503 `too_many_instances` (upgrades and POSTs): `limits.instances` live instances. */
  instances: number
  // After the upgrade (close codes)
  /** 1008: past `limits.subscriptionsPerConnection`. */
  subscriptionsPerConnection: number
  /** 1008: past `limits.subscriptionBytes`. */
  subscriptionBytes: number
  /** 1008: a subscription id longer than `limits.idBytes`. */
  idBytes: number
  /** 1008: past `limits.framesPerSecond`. */
  framesPerSecond: number
  /** 1009: a frame larger than `limits.frameBytes`. */
  frameBytes: number
  /** 4008: a socket's waiting output would pass `limits.slowConsumerBytes`. */
  slowConsumerBytes: number
  /** 4008: the process's waiting output passed `limits.outputBytes` (largest first). */
  outputBytes: number
  // Admin port
  /** 413: a body larger than `limits.bodyBytes`. */
  bodyBytes: number
  /** 400 `body_too_deep`: nesting deeper than `limits.bodyDepth`. */
  bodyDepth: number
  /** 503 `overloaded`: more than `limits.fanoutBacklog` deliveries queued. */
  fanoutBacklog: number
  /** Messages dropped from history because all instances together passed `limits.historyBytes`. */
  historyBytes: number
}

export function newLimitStats(): LimitStats {
  return {
    connections: 0,
    handshakesPerIp: 0,
    handshakeTimeout: 0,
    connectionsPerIp: 0,
    connectionsPerSecond: 0,
    origin: 0,
    instances: 0,
    subscriptionsPerConnection: 0,
    subscriptionBytes: 0,
    idBytes: 0,
    framesPerSecond: 0,
    frameBytes: 0,
    slowConsumerBytes: 0,
    outputBytes: 0,
    bodyBytes: 0,
    bodyDepth: 0,
    fanoutBacklog: 0,
    historyBytes: 0,
  }
}
