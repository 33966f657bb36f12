/**
 * Which configuration keys a running node takes without a restart, declared once. A reload
 * builds a new Config from the running one with the live keys taken from the new file (no
 * object is changed in place) and the node swaps it into each component that reads it; every
 * other difference is reported as needing a restart. test/unit/reconfigure.test.ts shows each
 * live key taking effect.
 */
import type { Config } from '../config/schema.ts'

type Section = 'history' | 'limits' | 'websocket' | 'relay' | 'drain'

/** Live keys, per section. `logs` is live as a whole (the runtime reopens its files). */
export const LIVE_KEYS: { readonly [S in Section]: readonly (keyof Config[S])[] } = {
  history: ['size', 'age', 'bytes'],
  limits: [
    'bodyBytes',
    'bodyDepth',
    'fanoutBacklog',
    'fanoutSlice',
    'instances',
    'historyBytes',
    'frameBytes',
    'framesPerSecond',
    'idBytes',
    'subscriptionsPerConnection',
    'subscriptionBytes',
    'slowConsumerBytes',
    'handshakesPerIp',
    'handshakeTimeout',
    'connectionsPerIp',
    'connectionsPerSecond',
    'connections',
    'outputBytes',
  ],
  // The runtime's own timer.
  websocket: ['heartbeat'],
  // timeout, connectTimeout and window size the runtime's connection pools: restart.
  relay: [
    'queue',
    'queueBytes',
    'maxAge',
    'retryBase',
    'retryMax',
    'failures',
    'flushTimeout',
    'trustLoopback',
  ],
  drain: ['window', 'waves'],
}

export interface Reconfiguration {
  /** The running config with every live key taken from the new one: a new object. */
  config: Config
  /** Settings now in force, e.g. "limits.subscriptionsPerConnection", "logs". */
  applied: string[]
  /** Settings that differ from the running ones but only a restart changes. */
  restartNeeded: string[]
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/** What of `next` a node running `running` can take now, and what needs a restart. */
export function reconfiguration(running: Config, next: Config): Reconfiguration {
  const applied: string[] = []
  const restartNeeded: string[] = []
  const config = { ...running } as Record<string, unknown>
  for (const key of new Set([...Object.keys(running), ...Object.keys(next)])) {
    if (key === 'logs' || key in LIVE_KEYS) continue
    if (!same(running[key as keyof Config], next[key as keyof Config])) restartNeeded.push(key)
  }
  if (!same(running.logs, next.logs)) {
    config.logs = next.logs
    applied.push('logs')
  }
  for (const section of Object.keys(LIVE_KEYS) as Section[]) {
    const current = running[section] as Record<string, unknown>
    const wanted = next[section] as Record<string, unknown>
    const live = LIVE_KEYS[section] as readonly string[]
    const merged = { ...current }
    for (const key of new Set([...Object.keys(current), ...Object.keys(wanted)])) {
      if (same(current[key], wanted[key])) continue
      const name = `${section}.${key}`
      if (!live.includes(key)) {
        restartNeeded.push(name)
        continue
      }
      merged[key] = wanted[key]
      applied.push(name)
    }
    config[section] = merged
  }
  return { config: config as Config, applied, restartNeeded }
}
