/**
 * A message on the broker: one line of JSON saying where it comes from, then the message
 * exactly as the accepting node serialised it (touched stamped). The header is read first,
 * so a node drops its own echo without parsing the body; the body is checked like any
 * relayed POST (src/admin/body.ts) before it goes anywhere.
 *
 *   {"v":1,"f":"<fingerprint>","i":"<instance>","q":<ms queued>}\n{"type":…,"subscribers":…}
 */
import { isValidInstance } from '../instance-name.ts'

export interface Envelope {
  /** The accepting node's fingerprint. */
  from: string
  instance: string
  /** Milliseconds the message waited on the sender before it was published (0: none). */
  queuedMs: number
  /** The message body (UTF-8 JSON). */
  body: Uint8Array
}

const VERSION = 1
const NEWLINE = 0x0a
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

/** Header and body as one payload. */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  const header = encoder.encode(
    `${JSON.stringify({ v: VERSION, f: envelope.from, i: envelope.instance, q: envelope.queuedMs })}\n`
  )
  const payload = new Uint8Array(header.byteLength + envelope.body.byteLength)
  payload.set(header, 0)
  payload.set(envelope.body, header.byteLength)
  return payload
}

/** The header's longest sensible length: fingerprint, instance name and a number. */
const MAX_HEADER_BYTES = 512

/**
 * Reads a payload from the broker. Returns why it is unusable instead of an envelope when
 * it is not one (a foreign publisher on our channel, a newer format, a truncated write).
 */
export function decodeEnvelope(payload: Uint8Array): Envelope | string {
  const end = payload.subarray(0, MAX_HEADER_BYTES + 1).indexOf(NEWLINE)
  if (end < 0) return 'no header line'
  let header: unknown
  try {
    header = JSON.parse(decoder.decode(payload.subarray(0, end)))
  } catch {
    return 'a header that is not JSON'
  }
  if (header === null || typeof header !== 'object') return 'a header that is not an object'
  const { v, f, i, q } = header as Record<string, unknown>
  if (v !== VERSION) return `envelope version ${JSON.stringify(v)}`
  if (typeof f !== 'string' || f.length === 0 || f.length > 64) return 'no sender fingerprint'
  if (typeof i !== 'string' || !isValidInstance(i)) return 'no valid instance name'
  if (typeof q !== 'number' || !Number.isInteger(q) || q < 0) return 'no valid queue time'
  return { from: f, instance: i, queuedMs: q, body: payload.subarray(end + 1) }
}
