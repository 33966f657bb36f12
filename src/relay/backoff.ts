/** Retry delays: exponential backoff with full jitter (AWS Architecture Blog, 2015). */

/**
 * The delay before retry number `attempt` (1 for the first retry): a uniform random value in
 * [0, min(max, base · 2^(attempt-1))]. `random` returns [0, 1) and is injectable for tests.
 */
export function fullJitter(
  attempt: number,
  base: number,
  max: number,
  random: () => number = Math.random
): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30)
  const ceiling = Math.min(max, base * 2 ** exponent)
  return Math.floor(random() * (ceiling + 1))
}
