/**
 * Real `redis-server` processes on loopback for tests: a single server and a small cluster of
 * masters. Debian's redis-server and redis-cli (7.0) must be on PATH (`.ci/install-redis.sh`);
 * tests that need them skip with `describe.skipIf(!redisAvailable())`.
 *
 * Every server listens only on 127.0.0.1 at a port drawn by `freePort()`, keeps nothing on
 * disk (`--save ''`, `--appendonly no`) but its cluster `nodes.conf`, runs in its own
 * mkdtemp directory, and is SIGKILLed by `dispose()` (and, failing that, when the test
 * process exits). Every wait is bounded.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './process.ts'

/**
 * A server's start, to its first PONG. redis-server is answering within milliseconds on an
 * idle machine, but a busy 2-core CI host stalls a process start (exec, jemalloc, the
 * dynamic loader) by seconds; 10 s is past the point where waiting longer means anything.
 */
export const REDIS_START_MS = 10_000

/**
 * A cluster reaching (or returning to) `cluster_state:ok` on every node. `--cluster create`
 * joins the nodes by gossip at 1 s ticks, and a restarted master keeps itself failed for
 * 2 s (CLUSTER_WRITABLE_DELAY) while its peers hold their FAIL flag for twice the node
 * timeout: a few seconds idle, 20 s on a loaded host.
 */
export const CLUSTER_OK_MS = 20_000

/** One redis-cli round trip, or a SIGKILLed process being reaped. */
const COMMAND_MS = 5_000

/** How often a wait asks again. */
const POLL_MS = 20

const HOST = '127.0.0.1'
const OUTPUT_LIMIT = 64 * 1024

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** True when `redis-server --version` runs (and redis-cli with it). */
export function redisAvailable(): boolean {
  const probe = (command: string): boolean => {
    try {
      return (
        spawnSync(command, ['--version'], { stdio: 'ignore', timeout: COMMAND_MS }).status === 0
      )
    } catch {
      return false
    }
  }
  return probe('redis-server') && probe('redis-cli')
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a command to completion; never rejects (a timeout or spawn error is a failed Run). */
function run(command: string, args: string[], timeoutMs = COMMAND_MS): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0
        const note = error && code === null ? `${error.message}\n` : ''
        resolve({ code, stdout: String(stdout), stderr: `${note}${String(stderr)}` })
      }
    )
  })
}

/** Children still running, SIGKILLed if the test process exits without disposing them. */
const live = new Set<ChildProcess>()
let exitHook = false
function track(child: ChildProcess): void {
  live.add(child)
  child.once('exit', () => live.delete(child))
  if (!exitHook) {
    exitHook = true
    process.once('exit', () => {
      for (const orphan of live) orphan.kill('SIGKILL')
    })
  }
}

/** Resolves when `child` has exited (at once if it already has); false after `timeoutMs`. */
function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit)
      resolve(false)
    }, timeoutMs)
    const onExit = (): void => {
      clearTimeout(timer)
      resolve(true)
    }
    child.once('exit', onExit)
  })
}

class AddressInUse extends Error {}

export interface RedisServerOptions {
  /** Default: a free port from `freePort()`. */
  port?: number
  /** Working directory (`--dir`); default: a fresh mkdtemp directory, removed by `dispose()`. */
  dir?: string
  /** Extra redis-server arguments, after the defaults (so they may override them). */
  args?: string[]
}

export class RedisServer {
  readonly url: string
  private child: ChildProcess | undefined
  private log = ''

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: readonly string[],
    private readonly ownsDir: boolean
  ) {
    this.url = `redis://${HOST}:${port}`
  }

  /**
   * Starts a redis-server and resolves once it answers PING. A port picked here that some
   * other process bound in the meantime is picked again (a given `port` is not).
   */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const ownsDir = options.dir === undefined
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'tidings-redis-'))
    const taken = new Set<number>()
    for (let attempt = 0; ; attempt++) {
      const port = options.port ?? (await freePort(taken))
      taken.add(port)
      const server = new RedisServer(port, dir, options.args ?? [], ownsDir)
      try {
        await server.launch()
        return server
      } catch (error) {
        await server.kill()
        if (options.port === undefined && error instanceof AddressInUse && attempt < 5) continue
        if (ownsDir) rmSync(dir, { recursive: true, force: true })
        throw error
      }
    }
  }

  /** True while the process is running. */
  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    )
  }

  /** What the server wrote to stdout and stderr (its log), across restarts; the tail only. */
  output(): string {
    return this.log
  }

  /** `redis-cli -h 127.0.0.1 -p <port> <args>`: its trimmed stdout; rejects if it fails. */
  async cli(...args: string[]): Promise<string> {
    const result = await run('redis-cli', ['-h', HOST, '-p', String(this.port), ...args])
    if (result.code !== 0) {
      throw new Error(
        `redis-cli -p ${this.port} ${args.join(' ')} failed (${result.code}): ${result.stderr.trim() || result.stdout.trim()}`
      )
    }
    return result.stdout.trim()
  }

  /** SHUTDOWN NOSAVE, then SIGKILL if the process has not exited within a bounded wait. */
  async stop(): Promise<void> {
    const child = this.child
    if (!child || !this.running) return
    // redis-cli reports the dropped connection as an error: the exit is what counts.
    await run('redis-cli', ['-h', HOST, '-p', String(this.port), 'shutdown', 'nosave'])
    if (await exited(child, COMMAND_MS)) return
    child.kill('SIGTERM')
    if (await exited(child, COMMAND_MS)) return
    await this.kill()
  }

  /** SIGKILL, and wait for the process to be reaped. */
  async kill(): Promise<void> {
    const child = this.child
    if (!child) return
    child.kill('SIGKILL')
    if (!(await exited(child, COMMAND_MS))) {
      throw new Error(`redis-server on port ${this.port} did not exit after SIGKILL`)
    }
  }

  /**
   * Starts the server again on the same port and dir with the same arguments (SIGKILLing it
   * first if it still runs); resolves when it answers PING.
   */
  async restart(): Promise<void> {
    await this.kill()
    await this.launch()
  }

  /** SIGKILL, and remove the temp dir this server made. */
  async dispose(): Promise<void> {
    await this.kill()
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true })
  }

  private async launch(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      HOST,
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      this.dir,
      '--protected-mode',
      'no',
      '--daemonize',
      'no',
      ...this.args,
    ]
    const child = spawn('redis-server', args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    track(child)
    const append = (chunk: Buffer): void => {
      this.log = (this.log + chunk.toString()).slice(-OUTPUT_LIMIT)
    }
    child.stdout?.on('data', append)
    child.stderr?.on('data', append)
    let spawnError: Error | undefined
    child.once('error', (error) => {
      spawnError = error
    })

    const deadline = Date.now() + REDIS_START_MS
    for (;;) {
      if (spawnError || !this.running) {
        // Let the last of its output arrive before quoting it.
        await sleep(POLL_MS)
        const why = spawnError
          ? spawnError.message
          : `exited (${child.exitCode ?? child.signalCode})`
        const message = `redis-server on port ${this.port} ${why} before answering PING:\n${this.log}`
        throw /Address already in use/i.test(this.log)
          ? new AddressInUse(message)
          : new Error(message)
      }
      const ping = await run('redis-cli', ['-h', HOST, '-p', String(this.port), 'ping'], 1000)
      if (ping.stdout.trim() === 'PONG') return
      if (Date.now() >= deadline) {
        throw new Error(
          `redis-server on port ${this.port} did not answer PING in ${REDIS_START_MS} ms:\n${this.log}`
        )
      }
      await sleep(POLL_MS)
    }
  }
}

export interface RedisClusterOptions {
  /** Masters (no replicas); at least 3, as `redis-cli --cluster create` requires. Default 3. */
  masters?: number
}

/**
 * N masters on loopback, slots spread by `redis-cli --cluster create`. Each node's cluster
 * bus gets its own free port (`--cluster-port`) rather than the default port + 10000, which
 * could land in the ephemeral range that `freePort()` stays below.
 */
export class RedisCluster {
  readonly urls: string[]

  private constructor(readonly nodes: RedisServer[]) {
    this.urls = nodes.map((node) => node.url)
  }

  static async start(options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const masters = options.masters ?? 3
    if (!Number.isInteger(masters) || masters < 3) {
      throw new Error(`a redis cluster needs at least 3 masters, not ${masters}`)
    }
    const nodes: RedisServer[] = []
    const taken = new Set<number>()
    try {
      for (let i = 0; i < masters; i++) nodes.push(await startClusterNode(taken))
      const cluster = new RedisCluster(nodes)
      const create = await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...nodes.map((node) => `${HOST}:${node.port}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
        ],
        CLUSTER_OK_MS
      )
      if (create.code !== 0) {
        throw new Error(
          `redis-cli --cluster create failed (${create.code}):\n${create.stdout}\n${create.stderr}`
        )
      }
      await cluster.waitUntilOk()
      return cluster
    } catch (error) {
      await Promise.all(nodes.map((node) => node.dispose()))
      throw error
    }
  }

  /** Resolves when every node reports `cluster_state:ok`; rejects after `timeoutMs`. */
  async waitUntilOk(timeoutMs = CLUSTER_OK_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let last: string[] = []
    for (;;) {
      last = await Promise.all(
        this.nodes.map((node) =>
          node.cli('cluster', 'info').catch((error: Error) => `(${error.message})`)
        )
      )
      if (last.every((info) => /^cluster_state:ok\s*$/m.test(info))) return
      if (Date.now() >= deadline) {
        const states = this.nodes.map(
          (node, i) =>
            `${node.port}: ${last[i]?.match(/^cluster_state:\S+/m)?.[0] ?? last[i] ?? '?'}`
        )
        throw new Error(`cluster not ok after ${timeoutMs} ms:\n${states.join('\n')}`)
      }
      await sleep(POLL_MS)
    }
  }

  /**
   * SIGKILLs master `index` and starts it again on the same port and dir, so it reloads its
   * nodes.conf (its slots, its peers) but no data; resolves when every node is ok again.
   */
  async restartMaster(index: number): Promise<void> {
    const node = this.nodes[index]
    if (!node) throw new Error(`no master ${index} in a cluster of ${this.nodes.length}`)
    await node.restart()
    await this.waitUntilOk()
  }

  /** SIGKILLs every node and removes their temp dirs. */
  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.dispose()))
  }
}

/** A cluster-enabled server with its own free client and bus ports, both added to `taken`. */
async function startClusterNode(taken: Set<number>): Promise<RedisServer> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort(taken)
    taken.add(port)
    const bus = await freePort(taken)
    taken.add(bus)
    try {
      return await RedisServer.start({
        port,
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '1000',
          '--cluster-port',
          String(bus),
        ],
      })
    } catch (error) {
      if (!(error instanceof AddressInUse) || attempt >= 5) throw error
    }
  }
}
