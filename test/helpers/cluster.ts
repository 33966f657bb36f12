/**
 * Multi-node helpers: free loopback ports, full-mesh configs, tidings processes started with
 * `node bin/tidings.js run --config <file>` and killed by pid, and a subscribed client per node.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { freePort } from './process.ts'
import { connect, type TestClient } from './ws-client.ts'

const ROOT = resolve(import.meta.dirname, '../..')

/** `count` distinct free ports on 127.0.0.1 (see freePort for why not port 0). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < count) ports.add(await freePort(ports))
  return [...ports]
}

export interface NodePorts {
  client: number
  admin: number
}

export async function nodePorts(count: number): Promise<NodePorts[]> {
  const ports = await freePorts(count * 2)
  return Array.from({ length: count }, (_, i) => ({
    client: ports[2 * i] as number,
    admin: ports[2 * i + 1] as number,
  }))
}

/** A config for `self` listing every node's admin server (itself included) under `cluster`. */
export function meshConfig(
  self: NodePorts,
  all: readonly NodePorts[],
  extra: Record<string, unknown> = {}
): Record<string, unknown> {
  return {
    servers: [
      { type: 'client', port: self.client, listen: '127.0.0.1' },
      { type: 'admin', port: self.admin, listen: '127.0.0.1' },
    ],
    cluster: all.map((node) => ({ host: '127.0.0.1', port: node.admin, protocol: 'http' })),
    ...extra,
  }
}

/** One `tidings run` child process. */
export class TidingsProcess {
  readonly output: string[] = []
  fingerprint = ''
  #child: ChildProcess | undefined
  readonly #dir: string

  constructor(
    readonly ports: NodePorts,
    readonly config: Record<string, unknown>
  ) {
    this.#dir = mkdtempSync(join(tmpdir(), 'tidings-cluster-'))
  }

  get adminUrl(): string {
    return `http://127.0.0.1:${this.ports.admin}`
  }

  get clientUrl(): string {
    return `ws://127.0.0.1:${this.ports.client}`
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && !this.#child.killed
  }

  /** Starts the process and resolves with its fingerprint once it listens. */
  async start(timeoutMs = 15_000): Promise<string> {
    const path = join(this.#dir, 'tidings.json')
    writeFileSync(path, JSON.stringify({ ...this.config, pidfile: join(this.#dir, 'pid') }))
    const child = spawn(process.execPath, ['bin/tidings.js', 'run', '--config', path], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.#child = child
    let buffered = ''
    const started = new Promise<string>((done, fail) => {
      const timer = setTimeout(
        () => fail(new Error(`tidings did not start: ${this.output.join('\n')}`)),
        timeoutMs
      )
      const onData = (chunk: Buffer): void => {
        buffered += chunk.toString('utf8')
        const lines = buffered.split('\n')
        buffered = lines.pop() ?? ''
        for (const line of lines) {
          this.output.push(line)
          const match = /This server has fingerprint "([^"]+)"/.exec(line)
          if (match) {
            clearTimeout(timer)
            done(match[1] as string)
          }
        }
      }
      child.stdout?.on('data', onData)
      child.stderr?.on('data', onData)
      child.once('exit', (code) => {
        clearTimeout(timer)
        fail(new Error(`tidings exited with ${code}: ${this.output.join('\n')}`))
      })
    })
    this.fingerprint = await started
    return this.fingerprint
  }

  /** SIGKILL, and wait for the exit. */
  async kill(): Promise<void> {
    const child = this.#child
    // Gone already (an exit code, or killed by a signal): its 'exit' will not come again.
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((done) => child.once('exit', done))
    child.kill('SIGKILL')
    await exited
  }

  /** SIGTERM (graceful), SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 5000): Promise<void> {
    const child = this.#child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((done) => child.once('exit', done))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    await exited
    clearTimeout(timer)
  }

  async dispose(): Promise<void> {
    await this.kill()
    rmSync(this.#dir, { recursive: true, force: true })
  }
}

/** A client on `url` subscribed to `ids`, with every frame recorded by key. */
export async function subscriber(url: string, ids: string[]): Promise<Subscriber> {
  const client = await connect(`${url}/`)
  const frames: Record<string, unknown>[] = []
  client.send({ command: 'subscribe', data: ids })
  await client.ping()
  client.ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as Record<string, unknown>
    if (frame.type !== 'pong') frames.push(frame)
  })
  return {
    client,
    frames,
    count: (key) => frames.filter((frame) => frame.key === key).length,
  }
}

export interface Subscriber {
  client: TestClient
  frames: Record<string, unknown>[]
  count(key: string): number
}

/** POSTs a message; resolves with the status (rejects if no answer within `timeoutMs`). */
export async function postMessage(
  adminUrl: string,
  message: object,
  options: { timeoutMs?: number; headers?: Record<string, string>; instance?: string } = {}
): Promise<number> {
  const query = options.instance ? `?instance=${encodeURIComponent(options.instance)}` : ''
  const response = await fetch(`${adminUrl}/${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify(message),
    signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
  })
  await response.arrayBuffer()
  return response.status
}

export async function adminStatus(adminUrl: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${adminUrl}/status/`, { signal: AbortSignal.timeout(3000) })
  return (await response.json()) as Record<string, unknown>
}

export interface PeerView {
  peer: string
  state: string
  fingerprint: string | null
  queue: number
  inFlight: number
  relayed: number
  dropped: number
  failed: number
  lastError: string | null
}

export async function peersOf(adminUrl: string): Promise<PeerView[]> {
  return ((await adminStatus(adminUrl)).cluster ?? []) as PeerView[]
}
