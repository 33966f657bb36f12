/**
 * Checks for the access-control configuration values: IP addresses and CIDR ranges
 * (`limits.trustedProxies`) and browser origins (`origins`). Web standards only.
 */

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

/** 4 for an IPv4 address, 6 for an IPv6 address (no zone id), 0 otherwise. */
export function ipFamily(text: string): 0 | 4 | 6 {
  if (IPV4.test(text)) return 4
  if (!text.includes(':') || !/^[0-9A-Fa-f:.]+$/.test(text)) return 0
  try {
    new URL(`http://[${text}]/`)
    return 6
  } catch {
    return 0
  }
}

/** True for `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8` and the like. */
export function isAddressOrCidr(text: string): boolean {
  const slash = text.indexOf('/')
  if (slash < 0) return ipFamily(text) !== 0
  const family = ipFamily(text.slice(0, slash))
  const prefix = text.slice(slash + 1)
  if (family === 0 || !/^\d{1,3}$/.test(prefix)) return false
  return Number(prefix) <= (family === 4 ? 32 : 128)
}

/**
 * True for a browser origin exactly as browsers send it in `Origin`: `http` or `https`,
 * lower-case host, port only when not the default, no path and no trailing slash.
 */
export function isOrigin(text: string): boolean {
  try {
    const url = new URL(text)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === text
  } catch {
    return false
  }
}
