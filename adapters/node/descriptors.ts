/**
 * The connection ceiling the process can hold: its open-file limit (soft RLIMIT_NOFILE, read
 * from /proc on Linux) less a reserve for the admin port, relays, logs and Node itself, so
 * at the ceiling the admin port, /readyz and relays still work. Used when
 * `limits.connections` is 0.
 */
import { readFileSync } from 'node:fs'

/** Descriptors kept back for everything that is not a client connection. */
export const DESCRIPTOR_RESERVE = 256

/** The soft open-file limit, or undefined where it cannot be read (not Linux). */
export function openFileLimit(): number | undefined {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8')
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits)
    if (!match || match[1] === 'unlimited') return undefined
    return Number(match[1])
  } catch {
    return undefined
  }
}

/** Client connections the process can hold, or undefined when the limit is unknown. */
export function descriptorCeiling(limit = openFileLimit()): number | undefined {
  if (limit === undefined) return undefined
  return Math.max(16, limit - DESCRIPTOR_RESERVE)
}
