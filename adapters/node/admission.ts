/**
 * Admission on the client port, decided at upgrade time, before any WebSocket exists:
 * the `Origin` allow-list (`origins`), open connections per client address
 * (`limits.connectionsPerIp`) and new connections per second per client address
 * (`limits.connectionsPerSecond`). All are off by default. A refused upgrade gets a plain
 * HTTP answer (403 or 429) with a JSON `{"error":{"code","message"}}` body.
 *
 * The client address is the TCP peer, or — only when that peer is listed in
 * `limits.trustedProxies` — the nearest untrusted address in `X-Forwarded-For`. IPv6
 * addresses are limited per /64, the block one host usually gets.
 */
import type { IncomingMessage } from 'node:http'
import { BlockList, isIP } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Limits } from '../../src/config/schema.ts'
import type { LimitStats } from '../../src/limit-stats.ts'
import type { Logger } from '../../src/ports.ts'

export interface AdmissionOptions {
  limits: Pick<Limits, 'connectionsPerIp' | 'connectionsPerSecond' | 'trustedProxies'>
  /** Allowed `Origin` values; null or undefined allows any. */
  origins?: readonly string[] | null | undefined
  stats: LimitStats
  logger: Logger
  now?: () => number
}

export type RefusalCode =
  | 'origin_not_allowed'
  | 'too_many_connections'
  | 'rate_limited'
  | 'instance_invalid'
  | 'unavailable'

export interface Refusal {
  status: 400 | 403 | 429 | 503
  code: RefusalCode
  message: string
  /** Seconds, sent as `Retry-After`. */
  retryAfter?: number
  /** The client address key it was counted under (for the log line, not sent). */
  from?: string
}

/** How often (ms) a refusal of one kind is logged at most; the line carries the count. */
const LOG_EVERY_MS = 60_000

/** `::ffff:1.2.3.4` → `1.2.3.4`; anything else unchanged. */
function unmap(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

/** The first four hextets of an IPv6 address (its /64), e.g. `2001:db8:0:1`. */
export function ipv6Prefix64(address: string): string {
  let text = address
  // An embedded IPv4 tail (`::1.2.3.4`) only matters past the /64; drop it.
  const lastColon = text.lastIndexOf(':')
  if (text.includes('.', lastColon)) text = `${text.slice(0, lastColon + 1)}0:0`
  const [head = '', tail] = text.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
  return groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')
}

/** The key a client address is counted under: IPv4 as is, IPv6 by its /64. */
export function addressKey(address: string): string {
  const bare = unmap(address)
  return isIP(bare) === 6 ? `${ipv6Prefix64(bare)}::/64` : bare
}

function trustedList(entries: readonly string[]): BlockList {
  const list = new BlockList()
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/')
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4'
    if (prefix === undefined) list.addAddress(address, type)
    else list.addSubnet(address, Number(prefix), type)
  }
  return list
}

interface Bucket {
  tokens: number
  at: number
}

export class Admission {
  readonly #options: AdmissionOptions
  readonly #now: () => number
  readonly #origins: ReadonlySet<string> | undefined
  readonly #trusted: BlockList | undefined
  /** client key → open connections (only while `connectionsPerIp` is on). */
  readonly #open = new Map<string, number>()
  readonly #keys = new WeakMap<Duplex, string>()
  readonly #buckets = new Map<string, Bucket>()
  #sweptAt = 0
  readonly #logged = new Map<RefusalCode, { at: number; count: number }>()
  /** One 'close' listener shared by every counted socket: `this` is the socket. */
  readonly #onClose: (this: Duplex) => void

  constructor(options: AdmissionOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
    this.#origins = options.origins ? new Set(options.origins) : undefined
    const { trustedProxies } = options.limits
    this.#trusted = trustedProxies.length > 0 ? trustedList(trustedProxies) : undefined
    const release = (socket: Duplex): void => this.#release(socket)
    this.#onClose = function (this: Duplex) {
      release(this)
    }
  }

  /** Open connections counted for `key` (tests and diagnostics). */
  openFrom(key: string): number {
    return this.#open.get(key) ?? 0
  }

  /**
   * The client address a request comes from: the TCP peer, or when that peer is a trusted
   * proxy, the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
   */
  clientAddress(request: IncomingMessage): string {
    let address = unmap(request.socket.remoteAddress ?? '')
    const trusted = this.#trusted
    if (!trusted || !this.#isTrusted(address)) return address
    const header = request.headers['x-forwarded-for']
    if (!header) return address
    const hops = (Array.isArray(header) ? header.join(',') : header).split(',')
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = unmap((hops[i] as string).trim())
      // Garbage in the header: stop at the last address we could vouch for.
      if (isIP(hop) === 0) return address
      address = hop
      if (!this.#isTrusted(hop)) return hop
    }
    return address
  }

  /**
   * Checks an upgrade request. Returns why it is refused, or undefined when it may proceed;
   * an admitted socket is counted against its address until it closes.
   */
  admit(request: IncomingMessage, socket: Duplex): Refusal | undefined {
    const refusal = this.#check(request, socket)
    if (refusal) this.#refused(refusal)
    return refusal
  }

  #check(request: IncomingMessage, socket: Duplex): Refusal | undefined {
    const origins = this.#origins
    if (origins) {
      const origin = request.headers.origin
      // Non-browser clients may send no Origin (or any); the list guards browsers only.
      if (origin !== undefined && !origins.has(origin.toLowerCase())) {
        this.#options.stats.origin++
        return {
          status: 403,
          code: 'origin_not_allowed',
          message: `Origin ${JSON.stringify(origin.slice(0, 200))} may not open client connections here (see "origins" in the configuration).`,
        }
      }
    }
    const { connectionsPerIp, connectionsPerSecond } = this.#options.limits
    if (connectionsPerIp === 0 && connectionsPerSecond === 0) return undefined
    const key = addressKey(this.clientAddress(request))
    if (connectionsPerSecond > 0 && !this.#takeToken(key, connectionsPerSecond)) {
      this.#options.stats.connectionsPerSecond++
      return {
        status: 429,
        code: 'rate_limited',
        message: `Too many new connections from this address (limit ${connectionsPerSecond} per second, "limits.connectionsPerSecond"); retry later.`,
        retryAfter: 1,
        from: key,
      }
    }
    if (connectionsPerIp > 0) {
      const open = this.#open.get(key) ?? 0
      if (open >= connectionsPerIp) {
        this.#options.stats.connectionsPerIp++
        return {
          status: 429,
          code: 'too_many_connections',
          message: `Too many open connections from this address (limit ${connectionsPerIp}, "limits.connectionsPerIp").`,
          retryAfter: 10,
          from: key,
        }
      }
      this.#open.set(key, open + 1)
      this.#keys.set(socket, key)
      socket.once('close', this.#onClose)
    }
    return undefined
  }

  #isTrusted(address: string): boolean {
    const family = isIP(address)
    return (
      family !== 0 && (this.#trusted as BlockList).check(address, family === 6 ? 'ipv6' : 'ipv4')
    )
  }

  #release(socket: Duplex): void {
    const key = this.#keys.get(socket)
    if (key === undefined) return
    this.#keys.delete(socket)
    const open = (this.#open.get(key) ?? 1) - 1
    if (open <= 0) this.#open.delete(key)
    else this.#open.set(key, open)
  }

  /** A token bucket per address holding one second's worth; buckets idle for 1 s are full and dropped. */
  #takeToken(key: string, perSecond: number): boolean {
    const now = this.#now()
    if (now - this.#sweptAt >= 1000) {
      this.#sweptAt = now
      for (const [name, bucket] of this.#buckets) {
        if (now - bucket.at >= 1000) this.#buckets.delete(name)
      }
    }
    const bucket = this.#buckets.get(key)
    if (!bucket) {
      this.#buckets.set(key, { tokens: perSecond - 1, at: now })
      return true
    }
    const tokens = Math.min(perSecond, bucket.tokens + ((now - bucket.at) * perSecond) / 1000)
    bucket.at = now
    if (tokens < 1) {
      bucket.tokens = tokens
      return false
    }
    bucket.tokens = tokens - 1
    return true
  }

  /** Logs refusals without letting a flood flood the log: one line per kind per minute. */
  #refused(refusal: Refusal): void {
    const { logger } = this.#options
    if (logger.tracing) {
      logger.trace(`Refused client connection [${refusal.from ?? '-'}]: ${refusal.message}`)
    }
    const now = this.#now()
    const entry = this.#logged.get(refusal.code)
    if (entry && now - entry.at < LOG_EVERY_MS) {
      entry.count++
      return
    }
    const from = refusal.from === undefined ? '' : ` [${refusal.from}]`
    const earlier =
      entry && entry.count > 0 ? ` (${entry.count} more since the last such line)` : ''
    logger.warn(`Refused client connection${from}: ${refusal.message}${earlier}`)
    this.#logged.set(refusal.code, { at: now, count: 0 })
  }
}

const STATUS_TEXT = {
  400: 'Bad Request',
  403: 'Forbidden',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
} as const

/** Answers a refused upgrade with its status and a JSON error body, then closes the socket. */
export function refuseUpgrade(socket: Duplex, refusal: Refusal): void {
  const body = `${JSON.stringify({ error: { code: refusal.code, message: refusal.message } })}\n`
  const retry = refusal.retryAfter === undefined ? '' : `Retry-After: ${refusal.retryAfter}\r\n`
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retry}Connection: close\r\n\r\n${body}`
  )
}
