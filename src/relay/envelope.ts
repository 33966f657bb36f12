/**
 * A message's identity across the cluster, and the relayed request that carries it.
 *
 * Identity is the message's `uniqueID`. Phorge adds 32 random characters to every post; a
 * message that arrives without one gets a random one at the node that accepts it first
 * (src/tidings.ts), so every copy of it, on tidings and original Aphlict nodes alike, carries
 * the same id and no node can be made to drop a message by a guessed one.
 */
import type { PeerAddress } from '../ports.ts'
import { SECRET_HEADER } from './secret.ts'

/** Longest accepted `uniqueID`, in characters (Phorge's are 32). */
export const MAX_UNIQUE_ID_LENGTH = 256

/**
 * The `uniqueID` of a message as a string: a non-empty string (or finite number) of bounded
 * length; `undefined` when there is none (absent or null); `false` when it is unusable.
 */
export function uniqueIdOf(value: unknown): string | undefined | false {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_UNIQUE_ID_LENGTH) {
    return false
  }
  return value
}

/** The key the dedup memory keeps for a message of `instance` (instance-scoped). */
export function dedupKey(instance: string, uniqueId: string): string {
  return `${instance}\u0000${uniqueId}`
}

/**
 * The path and headers of a relayed POST, the same from every transport: Aphlict's
 * `/?instance=` (URL-encoded here; Aphlict did not encode it) and the peer's secret, if any.
 */
export function relayRequestHead(
  peer: PeerAddress,
  instance: string
): { path: string; headers: Record<string, string> } {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (peer.secret) headers[SECRET_HEADER] = peer.secret
  return { path: `/?instance=${encodeURIComponent(instance)}`, headers }
}
