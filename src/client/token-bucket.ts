/**
 * The one token bucket, for every rate limit (frames per connection, new connections per
 * address): refilled lazily when a token is taken, so it costs no timer. A bucket holds one
 * second's worth: a client may spend `perSecond` at once, then `perSecond` per second.
 */

export interface Bucket {
  /** Tokens left as of `at`. */
  tokens: number
  /** When it was last refilled (ms); -Infinity for a new, full bucket. */
  at: number
}

export function newBucket(): Bucket {
  return { tokens: 0, at: Number.NEGATIVE_INFINITY }
}

/**
 * Takes one token from `bucket` at `now` (ms). Returns false, taking nothing, when it is
 * empty. `perSecond` 0 means no limit.
 */
export function takeToken(bucket: Bucket, now: number, perSecond: number): boolean {
  if (perSecond <= 0) return true
  // A new bucket has at = -Infinity, so it starts full.
  const elapsed = Math.max(0, now - bucket.at)
  const tokens = Math.min(perSecond, bucket.tokens + (elapsed * perSecond) / 1000)
  bucket.at = now
  // The epsilon absorbs floating-point dust, so a client exactly at the rate is never refused.
  if (tokens < 1 - 1e-9) {
    bucket.tokens = tokens
    return false
  }
  bucket.tokens = Math.max(0, tokens - 1)
  return true
}
