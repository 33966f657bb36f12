/**
 * The Node adapter: one core node (src/node/node.ts) behind the configured client and admin
 * servers. Client ports speak WebSocket through `ws` (client-port.ts); admin ports serve the
 * node's Hono app through @hono/node-server; relays go out through undici. Timers, drain and
 * close are in lifecycle.ts.
 */

import type { IncomingMessage } from 'node:http'
import { type AddressInfo, createServer as createNetServer } from 'node:net'
import { availableParallelism } from 'node:os'
import { getRequestListener } from '@hono/node-server'
import type { Config } from '../../src/config/schema.ts'
import { createNode, type TidingsNode } from '../../src/node/node.ts'
import type { Clock, Logger, PeerTransport } from '../../src/ports.ts'
import type { Relay } from '../../src/relay/relay.ts'
import type { Tidings } from '../../src/tidings.ts'
import { backplaneFailure } from './backplane-failure.ts'
import { type ClientPort, createClientPort } from './client-port.ts'
import { descriptorCeiling } from './descriptors.ts'
import { adminExposureWarnings } from './exposure.ts'
import { Lifecycle } from './lifecycle.ts'
import { bindAll, createEntryServer, inheritedFds, StartupError } from './listen.ts'
import type { LiveHooks, ReloadReport } from './reload.ts'
import { RuntimeMetrics } from './runtime-metrics.ts'
import type { WorkerPool } from './worker-pool.ts'

export interface NodeServerOptions {
  config: Config
  logger: Logger
  clock?: Clock
  fingerprint?: string
  /** How relays reach `cluster` peers; undici pools by default. */
  peerTransport?: PeerTransport
  /**
   * Take listening sockets this process was started with (a restart's TIDINGS_LISTEN_FDS,
   * systemd's LISTEN_FDS) instead of binding. The `tidings` command does; a program that
   * embeds tidings (tidings/node) keeps its own descriptors to itself unless it asks.
   */
  inheritSockets?: boolean
}

export interface BoundServer {
  type: 'client' | 'admin'
  index: number
  host: string
  port: number
  tls: boolean
}

export interface RunningServer {
  readonly node: TidingsNode
  readonly tidings: Tidings
  /** The cluster relay, when `cluster` lists peers. */
  readonly relay: Relay | undefined
  readonly servers: readonly BoundServer[]
  /** `ws://host:port` (or wss) of the first client server; `http://…` of the first admin server. */
  url(type: 'client' | 'admin'): string
  /** Stops accepting, closes client sockets with 1001 and waits (bounded) for them to go. */
  close(timeoutMs?: number): Promise<void>
  /** True from the start of a drain: /readyz answers 503 and new sockets are refused. */
  readonly draining: boolean
  /**
   * Graceful stop: refuses new sockets, closes the open ones with 4000 in randomised waves
   * over the window (config `drain` unless given), lets queued relays go, then close().
   */
  drain(options?: { windowMs?: number; waves?: number }): Promise<void>
  /** Applies a re-read configuration to what can change live (src/node/reconfigure.ts). */
  reconfigure(next: Config, hooks?: LiveHooks): Pick<ReloadReport, 'applied' | 'restartNeeded'>
  /** The listening descriptors, in the order of `servers` (for a restart's successor). */
  listeningFds(): number[]
  /** Stops accepting on every server; open sockets stay (a successor accepts now). */
  stopAccepting(): void
}

const systemClock: Clock = { now: () => Date.now() }

function urlOf(server: BoundServer): string {
  const host = server.host === '0.0.0.0' || server.host === '::' ? '127.0.0.1' : server.host
  const scheme =
    server.type === 'client' ? (server.tls ? 'wss' : 'ws') : server.tls ? 'https' : 'http'
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${server.port}`
}

/** `processes` as a number: "auto" is the cores this process may use. */
export function processCount(processes: Config['processes']): number {
  return processes === 'auto' ? availableParallelism() : processes
}

export async function startServer(options: NodeServerOptions): Promise<RunningServer> {
  const { config, logger } = options
  // Read (and cleared from the environment) first, before any child process is started.
  const fds = options.inheritSockets ? inheritedFds(config.servers.length) : undefined
  const runtime = new RuntimeMetrics()
  // undici loads only for a node with peers: it is most of the start-up time otherwise.
  const transport =
    config.cluster.length === 0
      ? undefined
      : (options.peerTransport ??
        new (await import('./peer-transport.ts')).UndiciPeerTransport(config.relay))
  // node-redis loads only for a node with a backplane, for the same reason.
  const broker = config.backplane
    ? (await import('./redis-broker.ts')).redisBrokerFactory(config.backplane)
    : undefined
  const processes = processCount(config.processes)
  let pool: WorkerPool | undefined
  const node = createNode({
    config,
    clock: options.clock ?? systemClock,
    logger,
    scheduler: { defer: (task) => setImmediate(task) },
    transport,
    broker,
    ...(options.fingerprint ? { fingerprint: options.fingerprint } : {}),
    runtime: {
      ceiling: descriptorCeiling(),
      remoteAddress: (_request, env) =>
        (env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress,
      families: () => runtime.families(),
      summary: () => runtime.summary(),
      ...(processes > 1 ? { workers: () => pool?.reports() ?? Promise.resolve([]) } : {}),
    },
  })
  if (node.backplane) {
    try {
      await node.connect()
    } catch (error) {
      await transport?.close?.()
      throw new StartupError(backplaneFailure(config, (error as Error).message))
    }
  }
  if (processes > 1) {
    // Workers first: a connection accepted once the ports listen has somewhere to go.
    const { WorkerPool } = await import('./worker-pool.ts')
    pool = new WorkerPool({ count: processes, node, logger, trace: logger.tracing })
    node.tidings.mirrors.push(pool)
    try {
      await pool.start()
    } catch (error) {
      await pool.close(0)
      await node.close(0)
      throw new StartupError(
        `Unable to start ${processes} worker processes: ${(error as Error).message}.`
      )
    }
  }
  const port = pool ? undefined : createClientPort(node, config, logger)
  const adminListener = getRequestListener(node.admin.fetch)
  const clientListener = getRequestListener(node.clientHttp.fetch)
  const entries = config.servers.map((entry, index) => {
    if (entry.type !== 'client') {
      return { server: createEntryServer(entry, index, adminListener), entry, index }
    }
    if (pool) {
      // The primary accepts, unread, and hands each connection to a worker (TLS there).
      const workers = pool
      const server = createNetServer({ pauseOnConnect: true }, (socket) =>
        workers.dispatch(socket, index)
      )
      return { server, entry, index }
    }
    const server = createEntryServer(entry, index, clientListener)
    const clientPort = port as ClientPort
    // For TLS too: 'connection' is the raw TCP socket, counted before its handshake.
    server.on('connection', clientPort.onConnection)
    server.on('upgrade', clientPort.onUpgrade)
    return { server, entry, index }
  })

  logger.log(`Starting servers (service PID ${process.pid}).`)
  let addresses: AddressInfo[]
  try {
    addresses = await bindAll(entries, fds)
  } catch (error) {
    // Nothing stays open behind a failed start: workers and broker connections included.
    await pool?.close(0)
    await node.close(0)
    throw error
  }
  node.state.listening = true
  const servers: BoundServer[] = entries.map(({ entry, index }, i) => ({
    type: entry.type as 'client' | 'admin',
    index,
    // Where the socket is bound, as the OS reports it (a host name resolved).
    host: (addresses[i] as AddressInfo).address,
    port: (addresses[i] as AddressInfo).port,
    tls: Boolean(entry['ssl.key']),
  }))
  for (const bound of servers) {
    logger.log(
      `Started ${bound.type} server (Port ${bound.port}, ${bound.tls ? 'With SSL' : 'No SSL'}).`
    )
  }
  logger.log(`This server has fingerprint "${node.fingerprint}".`)
  for (const warning of adminExposureWarnings(servers, config.secret)) logger.warn(warning)
  node.relay?.recogniseLocal(servers.filter((bound) => bound.type === 'admin'))
  // Peers holding relays for a node that was here before probe it now, not after back-off.
  node.relay?.hello()

  if (pool) logger.log(`Serving client sockets from ${processes} worker processes.`)
  const lifecycle = new Lifecycle(node, entries, port, runtime, pool)
  return {
    node,
    get tidings() {
      return node.tidings
    },
    relay: node.relay,
    servers,
    url(type) {
      const bound = servers.find((server) => server.type === type)
      if (!bound) throw new Error(`no ${type} server`)
      return urlOf(bound)
    },
    close: (timeoutMs) => lifecycle.close(timeoutMs),
    get draining() {
      return node.state.draining
    },
    drain: (drainOptions) => lifecycle.drain(drainOptions),
    reconfigure: (next, hooks = {}) => lifecycle.reconfigure(next, hooks),
    listeningFds: () => lifecycle.listeningFds(),
    stopAccepting: () => lifecycle.stopAccepting(),
  }
}
