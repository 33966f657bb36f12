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

/**
 * On a relay that waited in a queue (the peer was down or slow): how long ago, in ms, the
 * sender accepted the message. The receiver delivers it live only to sockets that existed
 * then, and keeps it for replay; the rest ask for it with `replay`. Aphlict ignores it.
 */
export const QUEUED_HEADER = 'X-Tidings-Queued'

/**
 * On a `/status/` request: the sender has just started. A tidings node that hears it probes
 * its down peers at once instead of waiting out their back-off (one of them may be the
 * sender, back with a new fingerprint). Aphlict answers the status request as usual.
 */
export const HELLO_HEADER = 'X-Tidings-Hello'

/** A queued time worth telling: below this a relay went out as fast as relays do. */
const QUEUED_MIN_MS = 100

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
  instance: string,
  queuedMs = 0
): { path: string; headers: Record<string, string> } {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (peer.secret) headers[SECRET_HEADER] = peer.secret
  if (queuedMs >= QUEUED_MIN_MS) headers[QUEUED_HEADER] = String(Math.round(queuedMs))
  return { path: `/?instance=${encodeURIComponent(instance)}`, headers }
}

/** The headers of a hello (see HELLO_HEADER), with the peer's secret, if any. */
export function helloHeaders(peer: PeerAddress, fingerprint: string): Record<string, string> {
  const headers: Record<string, string> = { [HELLO_HEADER]: fingerprint }
  if (peer.secret) headers[SECRET_HEADER] = peer.secret
  return headers
}

/**
 * The sender's queue time from a relayed request's header, in ms: a whole number from 0 to
 * `maxMs`; anything else is ignored (undefined), as is a header from an older sender.
 */
export function queuedMsOf(header: string | null | undefined, maxMs: number): number | undefined {
  if (!header || !/^\d{1,10}$/.test(header)) return undefined
  const ms = Number(header)
  return ms <= maxMs ? ms : undefined
}
