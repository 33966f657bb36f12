/**
 * Frames per second per client connection: a token bucket kept in two numbers on the
 * Connection (`frameTokens`, `frameAt`), refilled lazily on each frame, so it costs no timer
 * and no allocation per socket. The bucket holds one second's worth of frames: a client may
 * send `perSecond` frames at once, then `perSecond` per second on average.
 */
import type { Connection } from '../hub/connection.ts'

/** The close reason a client sees (with code 1008) when it sends frames too fast. */
export const FRAME_RATE_REASON = 'frame rate limit exceeded'

/**
 * Takes one frame from `connection`'s bucket at `now` (ms). Returns false, taking nothing,
 * when the bucket is empty. `perSecond` 0 means no limit.
 */
export function takeFrame(connection: Connection, now: number, perSecond: number): boolean {
  if (perSecond <= 0) return true
  // A new connection has frameAt = -Infinity, so its bucket starts full.
  const elapsed = Math.max(0, now - connection.frameAt)
  const tokens = Math.min(perSecond, connection.frameTokens + (elapsed * perSecond) / 1000)
  connection.frameAt = now
  // The epsilon absorbs floating-point dust, so a client exactly at the rate is never refused.
  if (tokens < 1 - 1e-9) {
    connection.frameTokens = tokens
    return false
  }
  connection.frameTokens = Math.max(0, tokens - 1)
  return true
}
