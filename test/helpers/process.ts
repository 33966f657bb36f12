/** Spawning the real `tidings` CLI and picking free loopback ports, for process-level tests. */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../../bin/tidings.js', import.meta.url))

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/**
 * A port that was free on 127.0.0.1 a moment ago, for a process that must be told its port
 * in advance (tests that can use port 0 should). Drawn at random below the kernel's
 * ephemeral range (32768 and up), so the many outgoing connections tests open, which take
 * ephemeral ports, cannot grab it before the process binds it.
 */
export async function freePort(taken: ReadonlySet<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    if (!taken.has(port) && (await canBind(port))) return port
  }
  throw new Error('no free port on 127.0.0.1 between 20000 and 31999')
}

export function tempDir(prefix = 'tidings-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export function writeConfig(dir: string, config: unknown, name = 'tidings.json'): string {
  const path = join(dir, name)
  writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config, null, 2))
  return path
}

/**
 * A config with a client and an admin server on 127.0.0.1 at fixed free ports (for processes
 * a test must reach by port), a log file and a pidfile under `dir`, written to `dir`.
 * `extra` overrides or adds top-level keys.
 */
export async function fixedPortConfig(dir: string, extra: Record<string, unknown> = {}) {
  const client = await freePort()
  const admin = await freePort(new Set([client]))
  const config = {
    servers: [
      { type: 'client', port: client, listen: '127.0.0.1' },
      { type: 'admin', port: admin, listen: '127.0.0.1' },
    ],
    logs: [{ path: join(dir, 'logs', 'tidings.log') }],
    pidfile: join(dir, 'run', 'tidings.pid'),
    ...extra,
  }
  return {
    client,
    admin,
    config,
    path: writeConfig(dir, config),
    adminUrl: `http://127.0.0.1:${admin}`,
  }
}

export interface Result {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `tidings <args>` to completion (killed after `timeoutMs`). */
export function runCli(args: string[], timeoutMs = 15_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(
        new Error(
          `tidings ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`
        )
      )
    }, timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

export interface Spawned {
  child: ChildProcess
  /** stdout and stderr, interleaved as they arrived. */
  output(): string
  /** stdout alone. */
  stdout(): string
  /** Resolves when the output matches `pattern`; rejects after `timeoutMs` or on exit. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>
  exited: Promise<number | null>
}

/** Starts a long-running `tidings <args>`; the caller must kill it. */
export function spawnCli(args: string[]): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  let stdout = ''
  const listeners: (() => void)[] = []
  const onData = (chunk: Buffer): void => {
    output += chunk
    for (const listener of [...listeners]) listener()
  }
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk
    onData(chunk)
  })
  child.stderr?.on('data', onData)
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return {
    child,
    output: () => output,
    stdout: () => stdout,
    exited,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(output)) {
            cleanup()
            resolve()
          }
        }
        const timer = setTimeout(() => {
          cleanup()
          reject(new Error(`output did not match ${pattern} in ${timeoutMs} ms:\n${output}`))
        }, timeoutMs)
        const cleanup = (): void => {
          clearTimeout(timer)
          listeners.splice(listeners.indexOf(check), 1)
        }
        listeners.push(check)
        exited.then(() => {
          if (listeners.includes(check)) {
            cleanup()
            reject(new Error(`process exited before output matched ${pattern}:\n${output}`))
          }
        })
        check()
      })
    },
  }
}
