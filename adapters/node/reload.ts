/**
 * `tidings reload` / SIGHUP: re-read the configuration file and apply what can change in a
 * running process. Sections the core reads on every use (limits, history, drain, relay
 * tuning) are updated in place in the running Config object; a few settings need a hook
 * (log files, frame limit, heartbeat). Everything else is reported as needing a restart.
 *
 * The daemon writes its report next to its pidfile so `tidings reload` can print it.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import type { Config } from '../../src/config/schema.ts'

export interface ReloadReport {
  /** Epoch ms when the reload ran. */
  at: number
  ok: boolean
  /** The file re-read, or "the embedded default". */
  source: string
  /** Settings now in force, e.g. "limits.subscriptionsPerConnection", "logs". */
  applied: string[]
  /** Settings that differ from the running ones but only a restart changes. */
  restartNeeded: string[]
  /** Why the file could not be used (nothing was changed then). */
  error?: string
}

/** What a reload cannot reach through the Config object alone. */
export interface LiveHooks {
  /** Reopen the log files (also done on every reload, for logrotate). */
  setLogs?(paths: string[]): void
  /** Largest client frame for sockets accepted from now on. */
  setFrameBytes?(bytes: number): void
  /** Restart the ping timer with a new period (0 stops it). */
  setHeartbeat?(ms: number): void
}

type Section = 'history' | 'limits' | 'websocket' | 'relay' | 'drain'

/**
 * Keys read where they are used (in place updates take effect), per section. Keys of these
 * sections not listed here were copied at start-up and need a restart.
 */
const LIVE_KEYS: Record<Section, readonly string[]> = {
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
  websocket: ['heartbeat'],
  relay: [
    'timeout',
    'window',
    'queue',
    'queueBytes',
    'maxAge',
    'retryBase',
    'retryMax',
    'failures',
    'flushTimeout',
  ],
  drain: ['window', 'waves'],
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/**
 * Applies `next` to the running configuration `running` (mutated in place) and the hooks.
 * Returns what changed and what would need a restart.
 */
export function applyConfig(
  running: Config,
  next: Config,
  hooks: LiveHooks = {}
): Pick<ReloadReport, 'applied' | 'restartNeeded'> {
  const applied: string[] = []
  const restartNeeded: string[] = []
  // Any other top-level key (servers, cluster, secret, origins, pidfile, ...) needs a restart.
  const topLevel = new Set([...Object.keys(running), ...Object.keys(next)])
  for (const key of topLevel) {
    if (key === 'logs' || key in LIVE_KEYS) continue
    const k = key as keyof Config
    if (!same(running[k], next[k])) restartNeeded.push(key)
  }
  const logPaths = next.logs.map((log) => log.path)
  if (!same(running.logs, next.logs)) {
    running.logs = next.logs
    applied.push('logs')
  }
  hooks.setLogs?.(logPaths)

  for (const section of Object.keys(LIVE_KEYS) as Section[]) {
    const current = running[section] as Record<string, unknown> | undefined
    const wanted = next[section] as Record<string, unknown> | undefined
    if (!current || !wanted) continue
    const keys = new Set([...Object.keys(current), ...Object.keys(wanted)])
    for (const key of keys) {
      if (same(current[key], wanted[key])) continue
      const name = `${section}.${key}`
      if (!LIVE_KEYS[section].includes(key)) {
        restartNeeded.push(name)
        continue
      }
      current[key] = wanted[key]
      applied.push(name)
    }
  }
  if (applied.includes('limits.frameBytes')) hooks.setFrameBytes?.(running.limits.frameBytes)
  if (applied.includes('websocket.heartbeat')) hooks.setHeartbeat?.(running.websocket.heartbeat)
  return { applied, restartNeeded }
}

/** One line for the log and the CLI. */
export function formatReport(report: ReloadReport): string {
  if (!report.ok) {
    return `Reload failed, the running configuration is unchanged: ${report.error ?? 'unknown error'}`
  }
  const applied =
    report.applied.length > 0 ? `applied ${report.applied.join(', ')}` : 'nothing changed'
  const restart =
    report.restartNeeded.length > 0
      ? `; needs a restart to change: ${report.restartNeeded.join(', ')}`
      : ''
  return `Reloaded configuration from ${report.source}: ${applied}${restart}.`
}

/** Where a daemon with pidfile `pidfile` writes its last reload report. */
export function reportPath(pidfile: string): string {
  return `${pidfile}.reload.json`
}

export function writeReport(path: string, report: ReloadReport): void {
  const temporary = `${path}.${process.pid}.tmp`
  writeFileSync(temporary, `${JSON.stringify(report)}\n`, { mode: 0o644 })
  renameSync(temporary, path)
}

export function readReport(path: string): ReloadReport | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ReloadReport
  } catch {
    return undefined
  }
}
