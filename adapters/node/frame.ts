/**
 * Builds a complete unmasked WebSocket text frame (RFC 6455 §5.2) for a payload, once per
 * message, so the fan-out writes one ready-made Buffer per socket. The core leaves room
 * before every payload (FRAME_HEADROOM), so the header is written there and the frame is a
 * view of the message's own bytes: no copy, and the message holds its payload once.
 */
import { hasHeadroom } from '../../src/hub/outbound.ts'
import type { Outbound } from '../../src/ports.ts'

const FIN_TEXT = 0x81

/**
 * How often the expensive steps ran, for regression tests: `frames` per message (never per
 * socket), `joins` per distinct per-turn sequence of messages (see client-socket.ts).
 */
export const frameStats = { frames: 0, joins: 0 }

function headerLength(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10
}

function writeHeader(frame: Buffer, length: number): void {
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
}

/** A frame for `payload`, in a new Buffer. */
export function textFrame(payload: Uint8Array): Buffer {
  const length = payload.byteLength
  const header = headerLength(length)
  const frame = Buffer.allocUnsafe(header + length)
  writeHeader(frame, length)
  frame.set(payload, header)
  return frame
}

/**
 * The frame of one of the core's messages, written in the FRAME_HEADROOM bytes the core
 * leaves before every payload (only those: any other Uint8Array may have data there).
 */
function frameInPlace(message: Outbound): Buffer {
  const payload = message.bytes
  if (!hasHeadroom(message)) return textFrame(payload)
  const length = payload.byteLength
  const header = headerLength(length)
  const frame = Buffer.from(payload.buffer, payload.byteOffset - header, header + length)
  writeHeader(frame, length)
  return frame
}

/** The message's frame, built on first use and kept in its adapter cache slot. */
export function frameOf(message: Outbound): Buffer {
  let frame = message.cache as Buffer | undefined
  if (frame === undefined) {
    frame = frameInPlace(message)
    message.cache = frame
    frameStats.frames++
  }
  return frame
}
