/**
 * Checks for the access-control configuration values: IP addresses and CIDR ranges
 * (`limits.trustedProxies`, see src/net/address.ts) and browser origins (`origins`).
 */
export { isAddressOrCidr } from '../net/address.ts'

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
