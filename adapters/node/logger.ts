/**
 * Log lines to every `logs[].path` (appended, created 0664) and, in debug mode, to the
 * console. Text lines look like Aphlict's: `[<local date>] <message>`; `--log-format json`
 * writes one JSON object per line instead.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { dirname } from 'node:path'
import type { Logger } from '../../src/ports.ts'
import { fsReason, StartupError } from './startup-error.ts'

export type LogFormat = 'text' | 'json'

export interface NodeLoggerOptions {
  paths: readonly string[]
  /** Enable trace lines (Aphlict's --debug). */
  trace: boolean
  format: LogFormat
  /** Where console lines go; none (daemon mode) when omitted. Warnings then go to stderr. */
  console?: ((line: string) => void) | undefined
}

/**
 * stderr, until a daemon's parent has gone (detachStderr): after that its pipe is closed, and
 * a write would fail with EPIPE.
 */
let stderrAttached = true

function toStderr(line: string): void {
  if (stderrAttached) process.stderr.write(`${line}\n`)
}

/**
 * Stops writing to stderr (the daemon child, once `tidings start` has returned): log lines
 * still go to the log files; anything else that writes to stderr later fails quietly.
 */
export function detachStderr(): void {
  stderrAttached = false
  process.stderr.on('error', () => {})
}

function openLog(path: string, index: number): WriteStream {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 })
  } catch (error) {
    throw new StartupError(
      `Failed to create directory "${dirname(path)}" for specified log file (with index "${index}"). You should manually create this directory or choose a different logfile location. ${fsReason(error)}`
    )
  }
  const stream = createWriteStream(path, { flags: 'a', mode: 0o664 })
  // A full disk or a revoked file must not take the server down; say so once on stderr.
  stream.once('error', (error) => toStderr(`tidings: cannot write log "${path}": ${error.message}`))
  return stream
}

export class NodeLogger implements Logger {
  readonly tracing: boolean
  #streams: WriteStream[]
  readonly #console: ((line: string) => void) | undefined

  constructor(private readonly options: NodeLoggerOptions) {
    this.tracing = options.trace
    this.#console = options.console
    this.#streams = options.paths.map((path, index) => openLog(path, index))
  }

  /**
   * Switches to `paths` (`tidings reload`), reopening every file: after logrotate moves a
   * log away, the next line goes to a fresh file. A path that cannot be opened is reported
   * on stderr and skipped.
   */
  reopen(paths: readonly string[]): void {
    const previous = this.#streams
    this.#streams = []
    for (const path of paths) {
      try {
        this.#streams.push(openLog(path, this.#streams.length))
      } catch (error) {
        toStderr(`tidings: cannot open log "${path}": ${(error as Error).message}`)
      }
    }
    for (const stream of previous) stream.end()
  }

  log(message: string): void {
    this.#write('log', message)
  }

  warn(message: string): void {
    this.#write('warn', message)
  }

  trace(message: string): void {
    if (this.tracing) this.#write('trace', message)
  }

  #write(level: string, message: string): void {
    const now = new Date()
    const line =
      this.options.format === 'json'
        ? JSON.stringify({ time: now.toISOString(), level, msg: message })
        : `[${now.toLocaleString()}] ${message}`
    for (const stream of this.#streams) {
      if (stream.writable) stream.write(`${line}\n`)
    }
    if (this.#console) this.#console(line)
    else if (level === 'warn') toStderr(line)
  }

  /** Flushes and closes the log files. */
  async close(): Promise<void> {
    await Promise.all(
      this.#streams.map((stream) => new Promise<void>((resolve) => stream.end(() => resolve())))
    )
  }
}
