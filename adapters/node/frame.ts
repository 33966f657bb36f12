/**
 * Builds a complete unmasked WebSocket text frame (RFC 6455 §5.2) for a payload, once per
 * message, so the fan-out writes one ready-made Buffer per socket.
 */
import type { Outbound } from '../../src/ports.ts'

const FIN_TEXT = 0x81

/**
 * How often the expensive steps ran, for regression tests: `frames` per message (never per
 * socket), `joins` per distinct per-turn sequence of messages (see client-socket.ts).
 */
export const frameStats = { frames: 0, joins: 0 }

export function textFrame(payload: Uint8Array): Buffer {
  const length = payload.byteLength
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = FIN_TEXT
  if (length < 126) {
    frame[1] = length
  } else if (length < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  frame.set(payload, headerLength)
  return frame
}

/** The message's frame, built on first use and kept in its adapter cache slot. */
export function frameOf(message: Outbound): Buffer {
  let frame = message.cache as Buffer | undefined
  if (frame === undefined) {
    frame = textFrame(message.bytes)
    message.cache = frame
    frameStats.frames++
  }
  return frame
}
