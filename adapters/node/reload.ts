/**
 * `tidings reload` / SIGHUP: the report of a reload. What can change in a running process is
 * declared in the core (src/node/reconfigure.ts); Node applies the rest of what it holds
 * itself (lifecycle.ts). The daemon writes its report next to its pidfile so `tidings reload`
 * can print it.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'

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

/** What the process around the server holds: its log files. */
export interface LiveHooks {
  /** Reopen the log files (also done on every reload, for logrotate). */
  setLogs?(paths: string[]): void
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

/** A stopped daemon's last report says nothing about the next one: remove it. */
export function removeReport(path: string): void {
  rmSync(path, { force: true })
}
