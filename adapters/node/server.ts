/**
 * The Node adapter: binds the configured client and admin servers around one Tidings core.
 * Client ports speak WebSocket through `ws` (upgrade on any path); admin ports serve the
 * core's Hono app through @hono/node-server.
 */
import type { IncomingMessage, Server } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import { createAdminApp } from '../../src/admin/app.ts'
import { Admission } from '../../src/client/admission.ts'
import { createClientApp } from '../../src/client/app.ts'
import { CLOSE_DRAIN, CLOSE_GOING_AWAY } from '../../src/close-codes.ts'
import type { Config } from '../../src/config/schema.ts'
import { PeerLatencies, relayHealth } from '../../src/metrics/relay-health.ts'
import type { Clock, Logger, PeerTransport } from '../../src/ports.ts'
import { Relay } from '../../src/relay/relay.ts'
import { clusterStatusExtras } from '../../src/relay/status.ts'
import { Tidings } from '../../src/tidings.ts'
import { createClientPort } from './client-port.ts'
import type { ClientWebSocket } from './client-socket.ts'
import { descriptorCeiling } from './descriptors.ts'
import { closeInWaves, drainClose } from './drain.ts'
import { adminExposureWarnings } from './exposure.ts'
import { bindAll, createEntryServer, listenAddress } from './listen.ts'
import { UndiciPeerTransport } from './peer-transport.ts'
import { applyConfig, type LiveHooks, type ReloadReport } from './reload.ts'
import { RuntimeMetrics } from './runtime-metrics.ts'
import { liveConnections, liveSockets, pingAll, stopListening, waitForClose } from './sockets.ts'

export interface NodeServerOptions {
  config: Config
  logger: Logger
  clock?: Clock
  fingerprint?: string
  /** How relays reach `cluster` peers; undici pools by default. */
  peerTransport?: PeerTransport
}

export interface BoundServer {
  type: 'client' | 'admin'
  index: number
  host: string
  port: number
  tls: boolean
}

export interface RunningServer {
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
  /** Applies a re-read configuration to what can change live (see reload.ts). */
  reconfigure(next: Config, hooks?: LiveHooks): Pick<ReloadReport, 'applied' | 'restartNeeded'>
}

const systemClock: Clock = { now: () => Date.now() }
const SWEEP_INTERVAL_MS = 1000
/** How long drained sockets get to finish their close handshake. */
const DRAIN_CLOSE_GRACE_MS = 2000

export async function startServer(options: NodeServerOptions): Promise<RunningServer> {
  const { config, logger } = options
  const clock = options.clock ?? systemClock
  const scheduler = { defer: (task: () => void) => setImmediate(task) }
  const tidings = new Tidings({
    config,
    clock,
    logger,
    scheduler,
    dedup: { size: config.relay.dedupSize, age: config.relay.dedupAge },
    ...(options.fingerprint ? { fingerprint: options.fingerprint } : {}),
  })
  // Relay round trips per peer, for tidings_relay_latency_seconds.
  const latencies = new PeerLatencies()
  const relay =
    config.cluster.length === 0
      ? undefined
      : new Relay({
          config,
          fingerprint: tidings.fingerprint,
          transport: options.peerTransport ?? new UndiciPeerTransport(config.relay),
          clock,
          logger,
          log: tidings.log,
          scheduler,
          observe: latencies.observe,
        })
  tidings.forwarder = relay
  const { heartbeat } = config.websocket
  const admission = new Admission({
    limits: config.limits,
    origins: config.origins,
    trustedProxies: config.limits.trustedProxies,
    stats: tidings.limited,
    log: tidings.log,
    clock,
    instances: tidings.hub,
    ceiling: descriptorCeiling(),
  })
  let closing = false
  let listening = false
  let draining = false
  let drained: Promise<void> | undefined
  const runtime = new RuntimeMetrics()
  const { wss, onConnection, onUpgrade, expireHandshakes } = createClientPort({
    tidings,
    config,
    logger,
    admission,
    refusing: () => closing || draining,
  })

  const adminListener = getRequestListener(
    createAdminApp({
      tidings,
      logger,
      // A getter, so `tidings reload` can change it.
      get bodyBytes() {
        return config.limits.bodyBytes
      },
      statusExtras: clusterStatusExtras(tidings, relay),
      secret: config.secret,
      trustLoopback: config.relay.trustLoopback,
      remoteAddress: (c) =>
        (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress,
      ops: {
        ready: () => listening && !closing,
        atCapacity: () => admission.atCapacity,
        connections: () => ({
          held: admission.held,
          handshaking: admission.handshaking,
          ceiling: admission.ceiling,
        }),
        draining: () => draining,
        peers: () => relayHealth(relay, latencies),
        runtime: () => runtime.summary(),
        runtimeFamilies: () => runtime.families(),
      },
    }).fetch
  )
  const clientListener = getRequestListener(createClientApp().fetch)
  const entries = config.servers.map((entry, index) => {
    const server = createEntryServer(
      entry,
      index,
      entry.type === 'client' ? clientListener : adminListener
    )
    if (entry.type === 'client') {
      // For TLS too: 'connection' is the raw TCP socket, counted before its handshake.
      server.on('connection', onConnection)
      server.on('upgrade', onUpgrade)
    }
    return { server, entry, index }
  })

  logger.log(`Starting servers (service PID ${process.pid}).`)
  const addresses = await bindAll(entries)
  listening = true
  const servers: BoundServer[] = entries.map(({ entry, index }, i) => ({
    type: entry.type as 'client' | 'admin',
    index,
    host: listenAddress(entry),
    port: (addresses[i] as { port: number }).port,
    tls: Boolean(entry['ssl.key']),
  }))
  for (const bound of servers) {
    logger.log(
      `Started ${bound.type} server (Port ${bound.port}, ${bound.tls ? 'With SSL' : 'No SSL'}).`
    )
  }
  logger.log(`This server has fingerprint "${tidings.fingerprint}".`)
  for (const warning of adminExposureWarnings(servers, config.secret)) logger.warn(warning)
  relay?.recogniseLocal(servers.filter((bound) => bound.type === 'admin'))

  for (const { server, entry } of entries) {
    // After start-up, a failed accept (EMFILE at the descriptor limit) must not end the process.
    server.on('error', (error: NodeJS.ErrnoException) => {
      tidings.log.warn(
        `server:${error.code ?? 'error'}`,
        `The ${entry.type} server on port ${entry.port} failed to accept a connection: ${error.message}${error.code === 'EMFILE' || error.code === 'ENFILE' ? ' (out of file descriptors: lower "limits.connections" or raise the descriptor limit)' : ''}.`
      )
    })
  }
  const sweep = setInterval(() => {
    tidings.hub.sweep()
    expireHandshakes()
    tidings.log.flush()
  }, SWEEP_INTERVAL_MS)
  sweep.unref()
  let pinger: NodeJS.Timeout | undefined
  const setHeartbeat = (ms: number): void => {
    if (pinger) clearInterval(pinger)
    pinger = ms > 0 ? setInterval(() => pingAll(tidings), ms) : undefined
    pinger?.unref()
  }
  setHeartbeat(heartbeat)
  // A server stopped twice would wait for a 'close' event that has already happened.
  const stops = new Map<Server, Promise<void>>()
  const stopOnce = (server: Server): Promise<void> => {
    let stop = stops.get(server)
    if (!stop) {
      stop = stopListening(server)
      stops.set(server, stop)
    }
    return stop
  }

  const running: RunningServer = {
    tidings,
    relay,
    servers,
    url(type) {
      const bound = servers.find((server) => server.type === type)
      if (!bound) throw new Error(`no ${type} server`)
      const host = bound.host === '0.0.0.0' || bound.host === '::' ? '127.0.0.1' : bound.host
      const scheme = type === 'client' ? (bound.tls ? 'wss' : 'ws') : bound.tls ? 'https' : 'http'
      return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${bound.port}`
    },
    async close(timeoutMs = 5000) {
      if (closing) return
      closing = true
      clearInterval(sweep)
      if (pinger) clearInterval(pinger)
      runtime.stop()
      const stopped = entries.map(({ server }) => stopOnce(server))
      const sockets = liveSockets(tidings)
      tidings.hub.closeAll(CLOSE_GOING_AWAY, 'server shutting down')
      // Queued relays get a bounded flush while client sockets close; then the pools close.
      await Promise.all([
        waitForClose(sockets, timeoutMs),
        relay?.close(Math.min(timeoutMs, config.relay.flushTimeout)),
      ])
      for (const { server } of entries) server.closeAllConnections()
      await Promise.all(stopped)
      wss.close()
    },
    get draining() {
      return draining
    },
    drain(drainOptions = {}) {
      if (drained) return drained
      draining = true
      drained = (async () => {
        const windowMs = drainOptions.windowMs ?? config.drain.window
        const waves = drainOptions.waves ?? config.drain.waves
        // New sockets go elsewhere; the admin port stays up for /readyz, /metrics and POSTs.
        for (const { server, entry } of entries) if (entry.type === 'client') stopOnce(server)
        const connections = liveConnections(tidings)
        logger.log(
          `Draining: closing ${connections.length} client sockets with ${CLOSE_DRAIN} in up to ${waves} waves over ${windowMs} ms.`
        )
        const sockets = connections.map((connection) => connection.socket as ClientWebSocket)
        const close = drainClose((connection) => tidings.hub.disconnect(connection))
        const result = await closeInWaves(connections, { windowMs, waves }, close)
        await waitForClose(sockets, DRAIN_CLOSE_GRACE_MS)
        logger.log(`Drained ${result.closed} client sockets in ${result.waves} waves.`)
        await running.close()
      })()
      return drained
    },
    reconfigure(next, hooks = {}) {
      return applyConfig(config, next, {
        ...hooks,
        setFrameBytes: (bytes) => {
          wss.options.maxPayload = bytes
        },
        setHeartbeat,
      })
    },
  }
  return running
}
