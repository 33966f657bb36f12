/** `tidings start | stop | status | reload`: a detached server tracked through its pidfile. */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Config } from '../../src/config/schema.ts'
import { isAlive, livePid, readPid } from './pidfile.ts'
import { formatReport, readReport, reportPath } from './reload.ts'
import { UsageError } from './usage.ts'

const BIN = fileURLToPath(new URL('../../bin/tidings.js', import.meta.url))

function pidfileOf(config: Config): string {
  if (!config.pidfile) {
    throw new UsageError(
      'The configuration has no "pidfile"; `tidings start`, `stop` and `status` need one.'
    )
  }
  return config.pidfile
}

export interface StartOptions {
  config: Config
  configPath: string | undefined
  logFormat: string
  print: (line: string) => void
}

/**
 * Starts a detached server and waits until it is listening (or has failed), so a port
 * conflict is reported here, with exit 1, rather than lost in a background process.
 */
export async function startDaemon({
  config,
  configPath,
  logFormat,
  print,
}: StartOptions): Promise<number> {
  const pidfile = pidfileOf(config)
  const running = livePid(pidfile)
  if (running !== undefined) {
    print(`tidings is already running (pid ${running}). Use \`tidings restart\` to restart it.`)
    return 1
  }
  const memory = config['memory.hint'] || 256
  const args = [
    `--max-old-space-size=${memory}`,
    BIN,
    'run',
    '--daemon-child',
    '--log-format',
    logFormat,
  ]
  if (configPath) args.push('--config', configPath)
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const outcome = await new Promise<'ready' | number>((resolve) => {
    child.once('message', () => resolve('ready'))
    child.once('exit', (code) => resolve(code ?? 1))
  })
  if (outcome !== 'ready') {
    print(stderr.trim() || `tidings exited with status ${outcome} during start-up.`)
    return 1
  }
  child.stderr?.destroy()
  child.disconnect()
  child.unref()
  print(`tidings started (pid ${child.pid}).`)
  return 0
}

/** The daemon's pidfile and live pid, or undefined after saying it is not running. */
function runningDaemon(
  config: Config,
  print: (line: string) => void
): { pidfile: string; pid: number } | undefined {
  const pidfile = pidfileOf(config)
  const pid = livePid(pidfile)
  if (pid === undefined) print('tidings is not running.')
  return pid === undefined ? undefined : { pidfile, pid }
}

/** How long `tidings restart` waits for the new process to take over. */
const HANDOVER_MS = 40_000

/**
 * Asks the running daemon to hand over to a new process (SIGUSR2) and waits until the
 * pidfile names the new one. Undefined when no daemon runs (the caller starts one).
 */
export async function restartDaemon(
  config: Config,
  print: (line: string) => void
): Promise<number | undefined> {
  const pidfile = pidfileOf(config)
  const pid = livePid(pidfile)
  if (pid === undefined) return undefined
  print(`Restarting tidings (pid ${pid})...`)
  process.kill(pid, 'SIGUSR2')
  const deadline = Date.now() + HANDOVER_MS
  for (;;) {
    const now = readPid(pidfile)
    if (now !== undefined && now !== pid && isAlive(now)) {
      print(`tidings restarted (pid ${pid} → ${now}); the old process is draining its sockets.`)
      return 0
    }
    if (!isAlive(pid) || Date.now() > deadline) {
      print(
        `tidings (pid ${pid}) did not hand over to a new process; see its log. The server ${isAlive(pid) ? 'still runs as before' : 'is not running'}.`
      )
      return 1
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Sends SIGTERM, waits up to `timeoutMs` for a graceful exit, then SIGKILL. */
export async function stopDaemon(
  config: Config,
  timeoutMs: number,
  print: (line: string) => void
): Promise<number> {
  const running = runningDaemon(config, print)
  if (!running) return 0
  const { pidfile, pid } = running
  print(`Stopping tidings (pid ${pid})...`)
  process.kill(pid, 'SIGTERM')
  const deadline = Date.now() + timeoutMs
  while (isAlive(pid) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  if (isAlive(pid)) {
    print(`tidings (pid ${pid}) did not exit in ${timeoutMs} ms; sending SIGKILL.`)
    process.kill(pid, 'SIGKILL')
  } else {
    print(`tidings (pid ${pid}) exited normally.`)
  }
  livePid(pidfile)
  return 0
}

/** Checks the process is alive and that its first admin server answers `/status/`. */
export async function daemonStatus(
  config: Config,
  adminUrl: string,
  print: (line: string) => void
): Promise<number> {
  const pidfile = pidfileOf(config)
  const recorded = readPid(pidfile)
  const pid = livePid(pidfile)
  if (pid === undefined) {
    print(
      recorded === undefined
        ? 'tidings is not running.'
        : `tidings is not running (stale pidfile for pid ${recorded} removed).`
    )
    return 1
  }
  try {
    const response = await fetch(`${adminUrl}/status/`, { signal: AbortSignal.timeout(2000) })
    const status = (await response.json()) as Record<string, unknown>
    print(`tidings (pid ${pid}) is running.`)
    print(JSON.stringify(status))
    return 0
  } catch (error) {
    print(
      `tidings (pid ${pid}) is running, but ${adminUrl}/status/ did not answer: ${(error as Error).message}`
    )
    return 1
  }
}

/**
 * Sends SIGHUP and prints the report the server writes next to its pidfile: what it
 * applied and what needs a restart. Exits 1 if the server is not running, rejects the
 * file, or does not answer within `timeoutMs`.
 */
export async function reloadDaemon(
  config: Config,
  timeoutMs: number,
  print: (line: string) => void
): Promise<number> {
  const running = runningDaemon(config, print)
  if (!running) return 1
  const { pidfile, pid } = running
  const path = reportPath(pidfile)
  const sent = Date.now()
  process.kill(pid, 'SIGHUP')
  const deadline = sent + timeoutMs
  while (Date.now() < deadline) {
    const report = readReport(path)
    if (report && report.at >= sent) {
      print(`tidings (pid ${pid}): ${formatReport(report)}`)
      return report.ok ? 0 : 1
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  print(
    `tidings (pid ${pid}) got SIGHUP but wrote no reload report in ${timeoutMs} ms; see its log.`
  )
  return 1
}
