/** Serialises a message once; every socket it goes to shares the result. */
import type { Outbound } from '../ports.ts'

const encoder = new TextEncoder()

class EncodedMessage implements Outbound {
  cache: unknown = undefined
  constructor(
    readonly text: string,
    readonly bytes: Uint8Array
  ) {}
}

/** Encodes `text` (already JSON) as one shared Outbound. */
export function outboundFromText(text: string): Outbound {
  return new EncodedMessage(text, encoder.encode(text))
}

/** JSON-serialises `value` once. */
export function outboundFromValue(value: unknown): Outbound {
  return outboundFromText(JSON.stringify(value))
}

/** `{"type":"pong"}`, built once for the whole process. */
export const PONG: Outbound = outboundFromValue({ type: 'pong' })
