/**
 * Admission on the client port: who may hold a connection, decided before any WebSocket
 * exists, the same on every runtime. A runtime that sees TCP connections (Node) takes a
 * Lease when one is accepted and releases it when it closes, whatever happened in between.
 * A lease counts against the process ceiling (`limits.connections`), against its client
 * address (`limits.connectionsPerIp`, `limits.connectionsPerSecond`) from the moment the
 * address is known, and, until the upgrade completes, against its TCP peer's handshakes
 * (`limits.handshakesPerIp`, with a deadline of `limits.handshakeTimeout`). The upgrade
 * request is then checked: shutting down, `Origin`, instance name and instance count.
 * Every refusal is a RequestError with a stable code, counted in LimitStats and logged at
 * most once per kind per interval.
 *
 * The client address is the TCP peer, or — only when that peer is listed in
 * `limits.trustedProxies` — the nearest untrusted address in `X-Forwarded-For`. IPv6
 * addresses are counted per /64.
 */
import type { Limits } from '../config/schema.ts'
import { RequestError } from '../errors.ts'
import { instanceFromPath, isValidInstance } from '../instance-name.ts'
import type { LimitStats } from '../limit-stats.ts'
import type { LogLimiter } from '../log-limiter.ts'
import { addressKey, CidrList, parseIp } from '../net/address.ts'
import type { Clock } from '../ports.ts'
import { type Bucket, newBucket, takeToken } from './token-bucket.ts'

export type AdmissionLimits = Pick<
  Limits,
  | 'connections'
  | 'handshakesPerIp'
  | 'handshakeTimeout'
  | 'connectionsPerIp'
  | 'connectionsPerSecond'
  | 'instances'
>

export interface AdmissionOptions {
  /** Read on every use, so a reload takes effect. */
  limits: AdmissionLimits
  /** Allowed `Origin` values; null or undefined allows any. */
  origins?: readonly string[] | null | undefined
  trustedProxies: readonly string[]
  stats: LimitStats
  log: LogLimiter
  clock: Clock
  /** The live instances, for `limits.instances`. */
  instances: { has(name: string): boolean; readonly count: number }
  /**
   * The connection ceiling when `limits.connections` is 0: what the runtime can hold (Node:
   * its descriptor limit less a reserve). Undefined or 0: no ceiling.
   */
  ceiling?: number | undefined
}

/** One accepted TCP connection, from accept to close. */
export class Lease {
  stage: 'handshake' | 'open' | 'closed' = 'handshake'
  /** The key its open connection is counted under (client address), once upgraded. */
  clientKey: string | undefined = undefined

  constructor(
    /** The TCP peer's address. */
    readonly peer: string,
    /** The key its handshake is counted under, or undefined for a trusted proxy. */
    readonly peerKey: string | undefined,
    readonly at: number,
    /** The runtime's handle (Node: the socket), for closing it at the deadline. */
    readonly handle: unknown
  ) {}
}

/** What an upgrade request carries that admission looks at. */
export interface UpgradeRequest {
  /** The request target as sent (`/~instance/?x`, or an absolute URL). */
  target: string
  origin?: string | null | undefined
  forwardedFor?: string | null | undefined
}

const SHUTTING_DOWN = new RequestError('unavailable', 503, 'Server is shutting down.', 5)

/** The path of a request target, without query, fragment or an absolute-form prefix. Never throws. */
export function targetPath(target: string): string {
  let path = target
  const end = path.search(/[?#]/)
  if (end >= 0) path = path.slice(0, end)
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/.exec(path)
  if (absolute) path = path.slice(absolute[0].length)
  return path === '' ? '/' : path
}

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1)
}

function decrement(map: Map<string, number>, key: string): void {
  const count = (map.get(key) ?? 1) - 1
  if (count <= 0) map.delete(key)
  else map.set(key, count)
}

export class Admission {
  #options: AdmissionOptions
  readonly #origins: ReadonlySet<string> | undefined
  readonly #trusted: CidrList
  /** Leases still handshaking, oldest first (a Set keeps insertion order). */
  readonly #handshaking = new Set<Lease>()
  /** TCP peer key → connections still handshaking. */
  readonly #pending = new Map<string, number>()
  /** Client key → upgraded connections. */
  readonly #open = new Map<string, number>()
  readonly #buckets = new Map<string, Bucket>()
  #bucketsSweptAt = 0
  /** Leases held now (handshaking and open). */
  #held = 0

  constructor(options: AdmissionOptions) {
    this.#options = options
    this.#origins = options.origins ? new Set(options.origins) : undefined
    this.#trusted = new CidrList(options.trustedProxies)
  }

  /** New limits (a reload): in force for the next connection. */
  reconfigure(limits: AdmissionLimits): void {
    this.#options = { ...this.#options, limits }
  }

  /** Client connections held now, upgraded or not. */
  get held(): number {
    return this.#held
  }

  /** Connections still handshaking. */
  get handshaking(): number {
    return this.#handshaking.size
  }

  /** The connection ceiling in force, or 0 for none. */
  get ceiling(): number {
    return this.#options.limits.connections || this.#options.ceiling || 0
  }

  /** True while the ceiling is reached: new connections are refused and /readyz says so. */
  get atCapacity(): boolean {
    const ceiling = this.ceiling
    return ceiling > 0 && this.#held >= ceiling
  }

  /** Open connections counted for a client address key (tests and diagnostics). */
  openFrom(key: string): number {
    return this.#open.get(key) ?? 0
  }

  /** A TCP connection from `peer` was accepted: a Lease, or why it must be refused at once. */
  accept(peer: string, handle: unknown): Lease | RequestError {
    const { stats, log } = this.#options
    if (this.atCapacity) {
      stats.connections++
      log.warn(
        'refused:at_capacity',
        `Refusing client connections: holding ${this.#held}, the ceiling ("limits.connections", or the descriptor limit less a reserve) is ${this.ceiling}.`
      )
      return new RequestError(
        'at_capacity',
        503,
        'This server holds as many client connections as it can; retry shortly or use another server.',
        5
      )
    }
    // A trusted proxy speaks for many clients: they are counted once its upgrade names them.
    const peerKey = this.#trusted.has(peer) ? undefined : addressKey(peer)
    if (peerKey !== undefined) {
      const refusal = this.#checkAddress(peerKey) ?? this.#checkHandshakes(peerKey)
      if (refusal) return refusal
      increment(this.#pending, peerKey)
    }
    const lease = new Lease(peer, peerKey, this.#options.clock.now(), handle)
    if (peerKey !== undefined) this.#count(lease, peerKey)
    this.#handshaking.add(lease)
    this.#held++
    return lease
  }

  /**
   * Checks an upgrade request (on `lease` when the runtime took one). Returns the instance it
   * joins, or why it is refused; an admitted lease is then counted as open until released.
   */
  admit(
    lease: Lease | undefined,
    request: UpgradeRequest,
    refusing: boolean
  ): string | RequestError {
    if (lease?.stage === 'closed') return SHUTTING_DOWN
    if (refusing) return SHUTTING_DOWN
    const refusal = this.#check(request)
    if (refusal) return refusal
    const instance = instanceFromPath(targetPath(request.target))
    if (lease) {
      if (lease.clientKey === undefined) {
        // Through a trusted proxy: the client it names is counted from now on.
        const key = addressKey(this.clientAddress(lease.peer, request.forwardedFor))
        const refusal = this.#checkAddress(key)
        if (refusal) return refusal
        this.#count(lease, key)
      }
      this.#leaveHandshake(lease)
      lease.stage = 'open'
    }
    return instance
  }

  /** The connection closed, at whatever stage. Safe to call more than once. */
  release(lease: Lease): void {
    if (lease.stage === 'closed') return
    if (lease.stage === 'handshake') this.#leaveHandshake(lease)
    if (lease.clientKey !== undefined) decrement(this.#open, lease.clientKey)
    lease.stage = 'closed'
    this.#held--
  }

  /**
   * Hands every lease past `limits.handshakeTimeout` to `expire` (which must close its
   * connection; the close releases it). Called from the node's sweep.
   */
  expire(expire: (lease: Lease) => void): void {
    const deadline = this.#options.clock.now() - this.#options.limits.handshakeTimeout
    for (const lease of this.#handshaking) {
      if (lease.at > deadline) break
      this.#leaveHandshake(lease)
      this.#options.stats.handshakeTimeout++
      expire(lease)
    }
  }

  /**
   * The client address of a connection from `peer`: the peer itself, or when it is a trusted
   * proxy, the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
   */
  clientAddress(peer: string, forwardedFor?: string | null): string {
    let address = peer
    if (this.#trusted.empty || !forwardedFor || !this.#trusted.has(peer)) return address
    const hops = forwardedFor.split(',')
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = (hops[i] as string).trim()
      // Garbage in the header: stop at the last address a trusted proxy vouched for.
      if (parseIp(hop) === undefined) return address
      address = hop
      if (!this.#trusted.has(hop)) return hop
    }
    return address
  }

  #leaveHandshake(lease: Lease): void {
    if (!this.#handshaking.delete(lease)) return
    if (lease.peerKey !== undefined && this.#pending.has(lease.peerKey)) {
      decrement(this.#pending, lease.peerKey)
    }
  }

  #check(request: UpgradeRequest): RequestError | undefined {
    const { stats, log, limits } = this.#options
    const origins = this.#origins
    const origin = request.origin
    // Non-browser clients may send no Origin (or any); the list guards browsers only.
    if (origins && origin !== undefined && origin !== null && !origins.has(origin.toLowerCase())) {
      stats.origin++
      const message = `Origin ${JSON.stringify(origin.slice(0, 200))} may not open client connections here (see "origins" in the configuration).`
      log.warn('refused:origin_not_allowed', `Refused client connection: ${message}`)
      return new RequestError('origin_not_allowed', 403, message)
    }
    const instance = instanceFromPath(targetPath(request.target))
    if (!isValidInstance(instance)) {
      return new RequestError(
        'instance_invalid',
        400,
        'The ~instance in the path is not a valid instance name.'
      )
    }
    const { instances } = this.#options
    if (!instances.has(instance) && instances.count >= limits.instances) {
      stats.instances++
      log.warn(
        'refused:too_many_instances',
        `Refused client connection to new instance "${instance}": ${instances.count} instances are live ("limits.instances").`
      )
      return new RequestError(
        'too_many_instances',
        503,
        `This server holds as many instances as it may ("limits.instances"); retry later.`,
        30
      )
    }
    return undefined
  }

  #count(lease: Lease, key: string): void {
    lease.clientKey = key
    increment(this.#open, key)
  }

  /** Upgrades in progress from one TCP peer (`limits.handshakesPerIp`). */
  #checkHandshakes(key: string): RequestError | undefined {
    const { limits, stats, log } = this.#options
    const pending = this.#pending.get(key) ?? 0
    if (limits.handshakesPerIp === 0 || pending < limits.handshakesPerIp) return undefined
    stats.handshakesPerIp++
    log.warn(
      'refused:too_many_handshakes',
      `Refused client connection [${key}]: ${pending} upgrades already in progress from this address ("limits.handshakesPerIp").`
    )
    return new RequestError(
      'too_many_handshakes',
      429,
      `Too many connections from this address are still upgrading (limit ${limits.handshakesPerIp}, "limits.handshakesPerIp").`,
      1
    )
  }

  /** New connections per second and open connections of one client address. */
  #checkAddress(key: string): RequestError | undefined {
    const { limits, stats, log } = this.#options
    const { connectionsPerIp, connectionsPerSecond } = limits
    if (connectionsPerSecond > 0 && !this.#takeToken(key, connectionsPerSecond)) {
      stats.connectionsPerSecond++
      log.warn(
        'refused:rate_limited',
        `Refused client connection [${key}]: more than ${connectionsPerSecond} new connections per second ("limits.connectionsPerSecond").`
      )
      return new RequestError(
        'rate_limited',
        429,
        `Too many new connections from this address (limit ${connectionsPerSecond} per second, "limits.connectionsPerSecond"); retry later.`,
        1
      )
    }
    if (connectionsPerIp > 0 && (this.#open.get(key) ?? 0) >= connectionsPerIp) {
      stats.connectionsPerIp++
      log.warn(
        'refused:too_many_connections',
        `Refused client connection [${key}]: ${connectionsPerIp} connections already open from this address ("limits.connectionsPerIp").`
      )
      return new RequestError(
        'too_many_connections',
        429,
        `Too many open connections from this address (limit ${connectionsPerIp}, "limits.connectionsPerIp").`,
        10
      )
    }
    return undefined
  }

  /** A token bucket per address holding one second's worth; buckets idle for 1 s are full and dropped. */
  #takeToken(key: string, perSecond: number): boolean {
    const now = this.#options.clock.now()
    if (now - this.#bucketsSweptAt >= 1000) {
      this.#bucketsSweptAt = now
      for (const [name, bucket] of this.#buckets) {
        if (now - bucket.at >= 1000) this.#buckets.delete(name)
      }
    }
    let bucket = this.#buckets.get(key)
    if (!bucket) {
      bucket = newBucket()
      this.#buckets.set(key, bucket)
    }
    return takeToken(bucket, now, perSecond)
  }
}
