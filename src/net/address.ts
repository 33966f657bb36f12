/**
 * IP addresses and CIDR ranges, web standards only, so the same admission policy runs on
 * every runtime: parsing (IPv4, IPv6 with `::` and an IPv4 tail, IPv4-mapped IPv6), the key
 * a client address is counted under, CIDR lists and loopback.
 */

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/
const HEXTET = /^[0-9A-Fa-f]{1,4}$/

/** A parsed address: 4 bytes (IPv4) or 16 (IPv6). IPv4-mapped IPv6 parses as IPv4. */
export interface IpAddress {
  readonly family: 4 | 6
  readonly bytes: Uint8Array
}

function parseIpv4(text: string): Uint8Array | undefined {
  if (!IPV4.test(text)) return undefined
  return Uint8Array.from(text.split('.').map(Number))
}

function parseHextets(text: string): number[] | undefined {
  if (text === '') return []
  const groups = text.split(':')
  const out: number[] = []
  for (const group of groups) {
    if (!HEXTET.test(group)) return undefined
    out.push(Number.parseInt(group, 16))
  }
  return out
}

function parseIpv6(input: string): Uint8Array | undefined {
  // A zone id (`fe80::1%eth0`) names an interface, not a different host.
  let text = input.includes('%') ? input.slice(0, input.indexOf('%')) : input
  if (!text.includes(':')) return undefined
  let tail: Uint8Array | undefined
  const lastColon = text.lastIndexOf(':')
  if (text.includes('.', lastColon)) {
    tail = parseIpv4(text.slice(lastColon + 1))
    if (!tail) return undefined
    text = `${text.slice(0, lastColon + 1)}0:0`
  }
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const left = parseHextets(halves[0] as string)
  const right = halves.length === 2 ? parseHextets(halves[1] as string) : []
  if (!left || !right) return undefined
  let hextets: number[]
  if (halves.length === 2) {
    const missing = 8 - left.length - right.length
    if (missing < 1) return undefined
    hextets = [...left, ...new Array<number>(missing).fill(0), ...right]
  } else {
    if (left.length !== 8) return undefined
    hextets = left
  }
  const bytes = new Uint8Array(16)
  hextets.forEach((value, i) => {
    bytes[2 * i] = value >> 8
    bytes[2 * i + 1] = value & 0xff
  })
  if (tail) bytes.set(tail, 12)
  return bytes
}

function isMapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false
  return bytes[10] === 0xff && bytes[11] === 0xff
}

/** Parses an IP address; an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) becomes IPv4. */
export function parseIp(text: string): IpAddress | undefined {
  const v4 = parseIpv4(text)
  if (v4) return { family: 4, bytes: v4 }
  const v6 = parseIpv6(text)
  if (!v6) return undefined
  if (isMapped(v6)) return { family: 4, bytes: v6.slice(12) }
  return { family: 6, bytes: v6 }
}

/** 4 for an IPv4 address, 6 for an IPv6 address, 0 for anything else. */
export function ipFamily(text: string): 0 | 4 | 6 {
  return parseIp(text)?.family ?? 0
}

/**
 * The key a client address is counted under by the per-address limits: IPv4 as dotted
 * decimal, IPv6 by its /64 (the block one host usually gets), e.g. `2001:db8:1:2::/64`.
 * Text that is not an address is its own key.
 */
export function addressKey(text: string): string {
  const ip = parseIp(text)
  if (!ip) return text
  if (ip.family === 4) return ip.bytes.join('.')
  const groups: string[] = []
  for (let i = 0; i < 8; i += 2)
    groups.push((((ip.bytes[i] as number) << 8) | (ip.bytes[i + 1] as number)).toString(16))
  return `${groups.join(':')}::/64`
}

interface Range {
  family: 4 | 6
  bytes: Uint8Array
  prefix: number
}

function parseRange(text: string): Range | undefined {
  const slash = text.indexOf('/')
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash))
  if (!ip) return undefined
  const max = ip.family === 4 ? 32 : 128
  if (slash < 0) return { ...ip, prefix: max }
  const prefixText = text.slice(slash + 1)
  if (!/^\d{1,3}$/.test(prefixText)) return undefined
  const prefix = Number(prefixText)
  return prefix <= max ? { ...ip, prefix } : undefined
}

/** True for `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8` and the like. */
export function isAddressOrCidr(text: string): boolean {
  return parseRange(text) !== undefined
}

function inRange(ip: IpAddress, range: Range): boolean {
  if (ip.family !== range.family) return false
  const whole = range.prefix >> 3
  for (let i = 0; i < whole; i++) if (ip.bytes[i] !== range.bytes[i]) return false
  const bits = range.prefix & 7
  if (bits === 0) return true
  const mask = (0xff << (8 - bits)) & 0xff
  return ((ip.bytes[whole] as number) & mask) === ((range.bytes[whole] as number) & mask)
}

/** A list of addresses and CIDR ranges (e.g. `limits.trustedProxies`). */
export class CidrList {
  readonly #ranges: Range[]

  /** @throws Error naming the first entry that is neither an address nor a range. */
  constructor(entries: readonly string[]) {
    this.#ranges = entries.map((entry) => {
      const range = parseRange(entry)
      if (!range) throw new Error(`not an IP address or CIDR range: ${JSON.stringify(entry)}`)
      return range
    })
  }

  get empty(): boolean {
    return this.#ranges.length === 0
  }

  /** True when `address` is in one of the ranges (false for text that is not an address). */
  has(address: string): boolean {
    if (this.#ranges.length === 0) return false
    const ip = parseIp(address)
    return ip !== undefined && this.#ranges.some((range) => inRange(ip, range))
  }
}

const LOOPBACK = new CidrList(['127.0.0.0/8', '::1'])

/** True for a loopback address: 127.0.0.0/8, ::1, or their IPv4-mapped forms. */
export function isLoopbackAddress(address: string | undefined): boolean {
  return address !== undefined && LOOPBACK.has(address)
}

/** True for a host name or address that only reaches this machine: `localhost` or loopback. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  return bare.toLowerCase() === 'localhost' || isLoopbackAddress(bare)
}
