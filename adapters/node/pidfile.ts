/** The pidfile `tidings start` writes and `stop`/`status` read; stale files are detected. */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fsReason, StartupError } from './startup-error.ts'

/** True when a process with this pid exists (signal 0 probes without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The pid in the file, or undefined when the file is missing or holds no positive integer. */
export function readPid(path: string): number | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
  const pid = Number.parseInt(text.trim(), 10)
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

/** The pid of a live process recorded in the file; a stale file is removed. */
export function livePid(path: string): number | undefined {
  const pid = readPid(path)
  if (pid === undefined) return undefined
  if (isAlive(pid)) return pid
  rmSync(path, { force: true })
  return undefined
}

export function writePid(path: string, pid: number): void {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 })
  } catch (error) {
    throw new StartupError(
      `Failed to create directory "${dirname(path)}" for specified PID file. You should manually create this directory or choose a different PID file location. ${fsReason(error)}`
    )
  }
  try {
    writeFileSync(path, `${pid}\n`)
  } catch (error) {
    throw new StartupError(`Unable to write the PID file "${path}". ${fsReason(error)}`)
  }
}

/** Removes the file only if it still names `pid` (a newer server may own it). */
export function removePid(path: string, pid: number): void {
  if (readPid(path) === pid) rmSync(path, { force: true })
}
