/**
 * For the real-browser tests: tidings nodes as separate processes (so one can be SIGKILLed),
 * a TCP "gate" in front of a node's client port (closed: every connection is refused), and
 * headless Debian Chromium through playwright-core. Everything on 127.0.0.1, bounded.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium } from 'playwright-core'

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..')
export const CHROMIUM = '/usr/bin/chromium'

/** Whether the browser tests can run; in CI they must (a missing Chromium fails them). */
export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM)
}

export async function launchChromium(): Promise<Browser> {
  if (!chromiumAvailable()) {
    throw new Error(
      `${CHROMIUM} is missing: install it with .ci/install-chromium.sh (apt-get install -y chromium).`
    )
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

export interface NodeProcess {
  clientUrl: string
  adminUrl: string
  child: ChildProcess
  /** Sends `signal` and waits (bounded) for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>
}

/** Starts `node bin/tidings.js run` with a loopback config on free ports; resolves once both listen. */
export async function spawnNode(timeoutMs = 20_000): Promise<NodeProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-browser-'))
  const configPath = join(dir, 'config.json')
  writeFileSync(
    configPath,
    JSON.stringify({
      servers: [
        { type: 'client', port: 0, listen: '127.0.0.1' },
        { type: 'admin', port: 0, listen: '127.0.0.1' },
      ],
    })
  )
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin/tidings.js'), 'run', '--config', configPath],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    }
  )
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()))
  exited.then(() => rmSync(dir, { recursive: true, force: true }))
  let output = ''
  const ports = await new Promise<{ client: number; admin: number }>((resolvePorts, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`tidings did not start within ${timeoutMs} ms:\n${output}`))
    }, timeoutMs)
    const found: { client?: number; admin?: number } = {}
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      for (const match of output.matchAll(/Started (client|admin) server \(Port (\d+)/g)) {
        found[match[1] as 'client' | 'admin'] = Number(match[2])
      }
      if (found.client && found.admin) {
        clearTimeout(timer)
        resolvePorts({ client: found.client, admin: found.admin })
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`tidings exited with ${code} before listening:\n${output}`))
    })
  })
  return {
    clientUrl: `ws://127.0.0.1:${ports.client}`,
    adminUrl: `http://127.0.0.1:${ports.admin}`,
    child,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    },
  }
}

export interface Gate {
  /** `ws://127.0.0.1:<gate port>` */
  readonly url: string
  /** Closed: connections are accepted and dropped at once, as if nothing listened. */
  open: boolean
  close(): Promise<void>
}

/** A TCP relay on a free loopback port to `target`'s port, that can refuse connections. */
export async function gate(targetUrl: string, open: boolean): Promise<Gate> {
  const targetPort = Number(new URL(targetUrl).port)
  const sockets = new Set<Socket>()
  const state = { open }
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    if (!state.open) {
      socket.destroy()
      return
    }
    const upstream = connect(targetPort, '127.0.0.1')
    sockets.add(upstream)
    upstream.on('close', () => {
      sockets.delete(upstream)
      socket.destroy()
    })
    upstream.on('error', () => socket.destroy())
    socket.on('close', () => upstream.destroy())
    socket.pipe(upstream)
    upstream.pipe(socket)
  })
  const port = await new Promise<number>((resolvePort) => {
    server.listen(0, '127.0.0.1', () => resolvePort((server.address() as { port: number }).port))
  })
  return {
    url: `ws://127.0.0.1:${port}`,
    get open() {
      return state.open
    },
    set open(value: boolean) {
      state.open = value
    },
    close: () =>
      new Promise<void>((resolveClose) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolveClose())
      }),
  }
}
