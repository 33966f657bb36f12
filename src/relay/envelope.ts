/**
 * A message's identity across the cluster, and the relayed body that carries it.
 *
 * Identity is the message's `uniqueID` (Phorge adds 32 random characters to every post) or,
 * for messages without one, an origin id `<fingerprint>:<sequence>` that the first tidings
 * node to accept the message adds under ORIGIN_KEY. Browsers never see ORIGIN_KEY: it is
 * stripped before local delivery and spliced back into the relayed body only.
 */
import type { Outbound, PeerAddress } from '../ports.ts'
import { SECRET_HEADER } from './secret.ts'

/** The namespaced body key carrying the origin id between tidings nodes. */
export const ORIGIN_KEY = 'tidings.origin'

const MAX_ID_LENGTH = 256
const encoder = new TextEncoder()

/** A usable id: a non-empty string (or finite number) of bounded length. */
function idOf(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    return undefined
  }
  return value
}

/** Removes ORIGIN_KEY from `value` (so local clients never see it) and returns it if usable. */
export function takeOrigin(value: Record<string, unknown>): string | undefined {
  if (!Object.hasOwn(value, ORIGIN_KEY)) return undefined
  const origin = idOf(value[ORIGIN_KEY])
  delete value[ORIGIN_KEY]
  return origin
}

export interface Identity {
  /** The key the dedup cache remembers (instance-scoped). */
  key: string
  /** The origin id to carry in relayed bodies, when identity does not come from uniqueID. */
  origin: string | undefined
}

/**
 * The identity of a message for `instance`: its uniqueID when it has one, else the origin id
 * it arrived with, else `assign()` (a fresh origin id), or undefined when there is none.
 */
export function identify(
  instance: string,
  value: Record<string, unknown>,
  origin: string | undefined,
  assign: (() => string) | undefined
): Identity | undefined {
  const unique = idOf(value.uniqueID)
  if (unique !== undefined) return { key: `${instance}\u0000u\u0000${unique}`, origin: undefined }
  const id = origin ?? assign?.()
  if (id === undefined) return undefined
  return { key: `${instance}\u0000o\u0000${id}`, origin: id }
}

/**
 * The bytes to relay: the locally delivered JSON itself, or, when the message carries an
 * origin id, the same JSON with ORIGIN_KEY appended as its last key. Serialised once.
 */
export function relayBody(outbound: Outbound, origin: string | undefined): Uint8Array {
  if (origin === undefined) return outbound.bytes
  const text = outbound.text
  // `text` is a JSON object with at least `touched` in it, so it ends with "}" and a comma fits.
  return encoder.encode(
    `${text.slice(0, -1)},${JSON.stringify(ORIGIN_KEY)}:${JSON.stringify(origin)}}`
  )
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
