/**
 * Recognising this server in its own `cluster` list without a round trip, when the entry
 * names one of our admin servers by a loopback address. Any other spelling (a DNS name, a
 * public address) is recognised from the first receipt instead, as Aphlict does.
 */

import { isLoopbackHost } from '../net/address.ts'

/** An admin server this process listens on. */
export interface LocalAdmin {
  host: string
  port: number
  tls: boolean
}

function normalise(host: string): string {
  const lower = host.toLowerCase()
  return lower.startsWith('[') && lower.endsWith(']') ? lower.slice(1, -1) : lower
}

/** True when `peer` certainly reaches one of `locals` (same port and scheme, same address). */
export function isLocalAdmin(
  peer: { host: string; port: number; protocol: string },
  locals: readonly LocalAdmin[]
): boolean {
  const host = normalise(peer.host)
  for (const local of locals) {
    if (local.port !== peer.port || local.tls !== (peer.protocol === 'https')) continue
    const bound = normalise(local.host)
    if (bound === host) return true
    if (host === 'localhost' && (bound === '127.0.0.1' || bound === '::1')) return true
    if ((bound === '0.0.0.0' || bound === '::') && isLoopbackHost(host)) return true
  }
  return false
}
