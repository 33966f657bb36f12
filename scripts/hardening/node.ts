/**
 * Shared by scripts/fuzz.ts and scripts/soak.ts: a real `tidings run` process on loopback
 * (ports chosen by the OS and read back from its log), its RSS from /proc, and bounded
 * process handling. Everything here binds 127.0.0.1 only.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../../bin/tidings.js', import.meta.url))
const PROBE = new URL('./probe.mjs', import.meta.url).href

export interface MemorySample {
  collected: boolean
  rss: number
  heapUsed: number
  heapTotal: number
  external: number
  arrayBuffers: number
}

export interface TidingsProcess {
  readonly child: ChildProcess
  readonly pid: number
  readonly clientUrl: string
  readonly adminUrl: string
  /** The last lines the server printed (for failure reports). */
  tail(): string[]
  /** How many lines printed since `watch(pattern)` match it. */
  count(pattern: RegExp): number
  /** Starts counting lines that match `pattern`; the first few are kept for reports. */
  watch(pattern: RegExp): void
  /** The first lines that matched `pattern` (up to 10). */
  matches(pattern: RegExp): string[]
  alive(): boolean
  /**
   * process.memoryUsage() of the server (after two full GCs when `gc`), through the probe
   * (see probe.mjs); only when started with `probe: true`.
   */
  memory(gc: boolean): Promise<MemorySample>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<number | null>
}

export interface StartOptions {
  /** Extra top-level config keys (limits, history, …); servers are set here. */
  config?: Record<string, unknown>
  /** Preload probe.mjs (with --expose-gc) so `memory()` works. */
  probe?: boolean
  env?: Record<string, string>
  timeoutMs?: number
  /** Extra Node flags, e.g. `--max-old-space-size=256` as `tidings start` runs its daemon. */
  nodeFlags?: string[]
}

/** Starts `node bin/tidings.js run --config <tmp>` with both servers on 127.0.0.1, port 0. */
export async function startTidings(options: StartOptions = {}): Promise<TidingsProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-hardening-'))
  const path = join(dir, 'tidings.json')
  writeFileSync(
    path,
    JSON.stringify({
      servers: [
        { type: 'client', port: 0, listen: '127.0.0.1' },
        { type: 'admin', port: 0, listen: '127.0.0.1' },
      ],
      logs: [],
      pidfile: join(dir, 'tidings.pid'),
      ...options.config,
    })
  )
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeFlags ?? []),
      ...(options.probe ? ['--expose-gc', '--import', PROBE] : []),
      BIN,
      'run',
      '--config',
      path,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...options.env },
    }
  )
  const lines: string[] = []
  const counts = new Map<RegExp, { n: number; samples: string[] }>()
  let partial = ''
  const onData = (chunk: Buffer): void => {
    const text = partial + chunk.toString('utf8')
    const parts = text.split('\n')
    partial = parts.pop() ?? ''
    for (const line of parts) {
      lines.push(line)
      if (lines.length > 200) lines.shift()
      for (const [pattern, seen] of counts) {
        if (!pattern.test(line)) continue
        seen.n++
        if (seen.samples.length < 10) seen.samples.push(line)
      }
      for (const waiter of [...waiters]) waiter(line)
    }
  }
  const waiters: ((line: string) => void)[] = []
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  let exitCode: number | null | undefined
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exitCode = code
      rmSync(dir, { recursive: true, force: true })
      resolve(code)
    })
  )
  const ports: Partial<Record<'client' | 'admin', number>> = {}
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(
        new Error(
          `tidings did not start within ${options.timeoutMs ?? 20_000} ms:\n${lines.join('\n')}`
        )
      )
    }, options.timeoutMs ?? 20_000)
    const waiter = (line: string): void => {
      const match = /Started (client|admin) server \(Port (\d+)/.exec(line)
      if (match) ports[match[1] as 'client' | 'admin'] = Number(match[2])
      if (ports.client && ports.admin) {
        clearTimeout(timer)
        waiters.splice(waiters.indexOf(waiter), 1)
        resolve()
      }
    }
    waiters.push(waiter)
    exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`tidings exited during start-up:\n${lines.join('\n')}`))
    })
  })
  return {
    child,
    pid: child.pid as number,
    clientUrl: `ws://127.0.0.1:${ports.client}`,
    adminUrl: `http://127.0.0.1:${ports.admin}`,
    tail: () => [...lines],
    count: (pattern) => counts.get(pattern)?.n ?? 0,
    watch(pattern) {
      if (!counts.has(pattern)) counts.set(pattern, { n: 0, samples: [] })
    },
    matches: (pattern) => [...(counts.get(pattern)?.samples ?? [])],
    alive: () => exitCode === undefined,
    memory(gc) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          child.off('message', onMessage)
          reject(new Error('the memory probe did not answer within 10 s'))
        }, 10_000)
        const onMessage = (message: unknown): void => {
          const sample = message as { probe?: string } & MemorySample
          if (sample?.probe !== 'memory') return
          clearTimeout(timer)
          child.off('message', onMessage)
          resolve(sample)
        }
        child.on('message', onMessage)
        child.send({ probe: 'memory', gc })
      })
    },
    async stop(graceMs = 5000) {
      if (exitCode !== undefined) return exitCode
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}

/** Resident set size of `pid` in bytes, from /proc/<pid>/status (VmRSS). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /VmRSS:\s+(\d+) kB/.exec(status)
  if (!match) throw new Error(`no VmRSS for ${pid}`)
  return Number(match[1]) * 1024
}

export const MB = 1024 * 1024
export const mb = (bytes: number): string => `${(bytes / MB).toFixed(1)} MB`

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms))

/** GET /status/?instance=… as JSON. */
export async function status(adminUrl: string, instance: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${adminUrl}/status/?instance=${encodeURIComponent(instance)}`, {
    signal: AbortSignal.timeout(5000),
  })
  return (await response.json()) as Record<string, unknown>
}

/** Reads `--name value` / `--name=value` flags into numbers or strings, with defaults. */
export function flags<T extends Record<string, number | string | boolean>>(
  argv: string[],
  defaults: T
): T {
  const out: Record<string, number | string | boolean> = { ...defaults }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (!arg.startsWith('--')) throw new Error(`unexpected argument "${arg}"`)
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined]
    if (!(name in defaults)) {
      throw new Error(`unknown option --${name} (known: ${Object.keys(defaults).join(', ')})`)
    }
    const fallback = defaults[name]
    if (typeof fallback === 'boolean' && inline === undefined) {
      out[name] = true
      continue
    }
    const value = inline ?? argv[++i]
    if (value === undefined) throw new Error(`--${name} needs a value`)
    if (typeof fallback === 'number') {
      const number = Number(value)
      if (!Number.isFinite(number)) throw new Error(`--${name} must be a number, got "${value}"`)
      out[name] = number
    } else if (typeof fallback === 'boolean') {
      out[name] = value === 'true' || value === '1'
    } else {
      out[name] = value
    }
  }
  return out as T
}
