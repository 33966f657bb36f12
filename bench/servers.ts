/**
 * Starting the servers under test as child processes, each with bench/probe.mjs preloaded
 * (IPC only) so the bench can read its CPU time, RSS after GC and event-loop delay.
 * tidings runs through its real CLI: `node --expose-gc bin/tidings.js run --config <tmp>`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { ProbeSample } from './protocol.ts'

export type ServerKind = 'ws' | 'ws-cork' | 'tidings'

export const SERVER_LABELS: Record<ServerKind, string> = {
  ws: 'bare ws',
  'ws-cork': 'bare ws + cork',
  tidings: 'tidings',
}

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PROBE = pathToFileURL(join(ROOT, 'bench/probe.mjs')).href

export interface ServerOptions {
  /** Bytes buffered before a socket counts as a slow consumer. */
  slowBytes: number
  /** Merged into tidings' configuration (top-level keys; `limits` on top of slowConsumerBytes). */
  tidingsConfig: Record<string, unknown>
  maxMs: number
  /** Extra Node flags for the server process (profiling). */
  nodeFlags?: string[]
  /** Pin the server to this CPU with taskset (undefined: no pinning). */
  cpu?: number | undefined
}

export interface RunningServer {
  kind: ServerKind
  pid: number
  clientUrl: string
  adminUrl: string
  sample(options?: { gc?: boolean; reset?: boolean }): Promise<ProbeSample>
  /** Starts a V8 CPU profile in the server, or stops it and writes it to `path`. */
  profile(action: 'start' | 'stop', path?: string): Promise<void>
  stop(): Promise<void>
}

function command(kind: ServerKind, options: ServerOptions, dir: string): string[] {
  const node = [process.execPath, ...(options.nodeFlags ?? []), '--expose-gc', '--import', PROBE]
  if (kind === 'tidings') {
    const config = join(dir, 'tidings.json')
    writeFileSync(
      config,
      JSON.stringify({
        servers: [
          { type: 'client', port: 0, listen: '127.0.0.1' },
          { type: 'admin', port: 0, listen: '127.0.0.1' },
        ],
        logs: [],
        ...options.tidingsConfig,
        limits: {
          slowConsumerBytes: options.slowBytes,
          // The fleet opens thousands of connections at once from 127.0.0.1.
          handshakesPerIp: 0,
          ...(options.tidingsConfig.limits as Record<string, unknown> | undefined),
        },
      })
    )
    return [...node, join(ROOT, 'bin/tidings.js'), 'run', '--config', config]
  }
  return [
    ...node,
    '--import',
    'tsx',
    join(ROOT, 'bench/baseline-server.ts'),
    '--slow-bytes',
    String(options.slowBytes),
    ...(kind === 'ws-cork' ? ['--cork'] : []),
  ]
}

/** Ports from the server's stdout: tidings' "Started … server (Port N" lines or the baseline's. */
function readPorts(kind: ServerKind, output: string): [number, number] | undefined {
  if (kind !== 'tidings') {
    const match = /listening (\d+) (\d+)/.exec(output)
    return match ? [Number(match[1]), Number(match[2])] : undefined
  }
  const client = /Started client server \(Port (\d+)/.exec(output)
  const admin = /Started admin server \(Port (\d+)/.exec(output)
  return client && admin ? [Number(client[1]), Number(admin[1])] : undefined
}

export async function startServer(
  kind: ServerKind,
  options: ServerOptions
): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-bench-'))
  let argv = command(kind, options, dir)
  if (options.cpu !== undefined) argv = ['taskset', '-c', String(options.cpu), ...argv]
  const child: ChildProcess = spawn(argv[0] as string, argv.slice(1), {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, BENCH_MAX_MS: String(options.maxMs) },
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    if (output.length < 65536) output += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    if (output.length < 65536) output += chunk.toString()
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))

  const running = () => child.exitCode === null && child.signalCode === null
  const stop = async (): Promise<void> => {
    // SIGTERM first, so that --cpu-prof and friends get to write; SIGKILL if it lingers.
    if (running()) child.kill('SIGTERM')
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))])
    if (running()) child.kill('SIGKILL')
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
    rmSync(dir, { recursive: true, force: true })
  }

  const ports = await new Promise<[number, number]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} did not start:\n${output}`)), 30_000)
    const check = (): void => {
      const found = readPorts(kind, output)
      if (found) {
        clearTimeout(timer)
        resolve(found)
      }
    }
    child.stdout?.on('data', check)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${kind} exited with ${code} before listening:\n${output}`))
    })
  }).catch(async (error) => {
    await stop()
    throw error
  })

  let nextProbe = 1
  const waiting = new Map<number, (sample: ProbeSample) => void>()
  child.on('message', (message: { probe?: number; sample?: ProbeSample }) => {
    if (typeof message.probe !== 'number') return
    waiting.get(message.probe)?.(message.sample as ProbeSample)
    waiting.delete(message.probe)
  })
  const ask = (request: Record<string, unknown>): Promise<ProbeSample> => {
    const id = nextProbe++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(id)
        reject(new Error(`${kind} probe did not answer`))
      }, 30_000)
      waiting.set(id, (sample) => {
        clearTimeout(timer)
        resolve(sample)
      })
      child.send({ probe: id, ...request })
    })
  }

  return {
    kind,
    pid: child.pid as number,
    clientUrl: `ws://127.0.0.1:${ports[0]}/~bench/`,
    adminUrl: `http://127.0.0.1:${ports[1]}`,
    sample(request = {}) {
      return ask({ gc: request.gc === true, reset: request.reset === true })
    },
    async profile(action, path) {
      await ask(action === 'start' ? { profile: 'start' } : { profile: 'stop', path })
    },
    stop,
  }
}
