/**
 * Serialises a message once; every socket it goes to shares the result. The UTF-8 bytes sit
 * FRAME_HEADROOM bytes into their buffer, and those bytes belong to the message: an adapter
 * that writes WebSocket frames itself may put the frame header there once and send header
 * and payload as one view, with no copy (see adapters/node/frame.ts). The text is not kept;
 * it is decoded on demand (adapters that send text cache it in `cache`).
 */
import type { Outbound } from '../ports.ts'

/** Room before every payload for a WebSocket frame header (2, 4 or 10 bytes). */
export const FRAME_HEADROOM = 10

const encoder = new TextEncoder()
const decoder = new TextDecoder()

class EncodedMessage implements Outbound {
  cache: unknown = undefined
  readonly bytes: Uint8Array

  constructor(encoded: Uint8Array) {
    const buffer = new Uint8Array(FRAME_HEADROOM + encoded.byteLength)
    buffer.set(encoded, FRAME_HEADROOM)
    this.bytes = buffer.subarray(FRAME_HEADROOM)
  }

  get text(): string {
    return decoder.decode(this.bytes)
  }
}

/** True for an Outbound made here, which has FRAME_HEADROOM free bytes before its payload. */
export function hasHeadroom(message: Outbound): boolean {
  return message instanceof EncodedMessage
}

/** Encodes `text` (already JSON) as one shared Outbound. */
export function outboundFromText(text: string): Outbound {
  return new EncodedMessage(encoder.encode(text))
}

/** Wraps UTF-8 JSON bytes (copied, with headroom) as one shared Outbound. */
export function outboundFromBytes(bytes: Uint8Array): Outbound {
  return new EncodedMessage(bytes)
}

/** JSON-serialises `value` once. */
export function outboundFromValue(value: unknown): Outbound {
  return outboundFromText(JSON.stringify(value))
}

/** `{"type":"pong"}`, built once for the whole process. */
export const PONG: Outbound = outboundFromValue({ type: 'pong' })
