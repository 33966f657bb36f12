/**
 * The Node adapter's timers and endings: the node's tick every second (history, handshake
 * deadlines, budgets, log summaries), the WebSocket heartbeat, graceful drain and close, and
 * applying a reload to what Node itself holds (log files, ws's frame limit, the heartbeat).
 */
import type { Server } from 'node:http'
import type { Server as NetServer, Socket } from 'node:net'
import type { Config, ServerEntry } from '../../src/config/schema.ts'
import type { TidingsNode } from '../../src/node/node.ts'
import type { ClientPort } from './client-port.ts'
import type { ClientWebSocket } from './client-socket.ts'
import type { LiveHooks, ReloadReport } from './reload.ts'
import type { RuntimeMetrics } from './runtime-metrics.ts'
import { pingAll, stopHandingOff, stopListening, waitForClose } from './sockets.ts'

const TICK_MS = 1000
/** How long drained sockets get to finish their close handshake. */
const DRAIN_CLOSE_GRACE_MS = 2000

/** Processes holding this node's client sockets (a primary's workers), stopped with it. */
export interface SocketHolders {
  drain(options: { windowMs?: number; waves?: number }): Promise<void>
  close(timeoutMs: number): Promise<void>
  reconfigure(next: Config): void
}

export class Lifecycle {
  readonly #tick: NodeJS.Timeout
  #pinger: NodeJS.Timeout | undefined
  /** A server stopped twice would wait for a 'close' event that has already happened. */
  readonly #stops = new Map<Server | NetServer, Promise<void>>()
  #closed: Promise<void> | undefined
  #drained: Promise<void> | undefined

  constructor(
    private readonly node: TidingsNode,
    private readonly entries: readonly { server: Server | NetServer; entry: ServerEntry }[],
    /** The WebSocket side of the client servers; none in a primary (its workers hold it). */
    private readonly port: ClientPort | undefined,
    private readonly runtime: RuntimeMetrics,
    private readonly holders?: SocketHolders
  ) {
    const expire = (lease: { handle: unknown }): void => {
      ;(lease.handle as Socket).destroy()
    }
    this.#tick = setInterval(() => node.tick(expire), TICK_MS)
    this.#tick.unref()
    this.#setHeartbeat(node.config.websocket.heartbeat)
    for (const { server, entry } of entries) {
      // After start-up, a failed accept (EMFILE at the descriptor limit) must not end the process.
      server.on('error', (error: NodeJS.ErrnoException) => {
        const descriptors = error.code === 'EMFILE' || error.code === 'ENFILE'
        node.tidings.log.warn(
          `server:${error.code ?? 'error'}`,
          `The ${entry.type} server on port ${entry.port} failed to accept a connection: ${error.message}${descriptors ? ' (out of file descriptors: lower "limits.connections" or raise the descriptor limit)' : ''}.`
        )
      })
    }
  }

  /** Stops accepting, closes client sockets with 1001, flushes relays (bounded), stops servers. */
  close(timeoutMs = 5000): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#tick)
      if (this.#pinger) clearInterval(this.#pinger)
      this.runtime.stop()
      const stopped = this.entries.map(({ server }) => this.#stop(server))
      const sockets = this.#sockets()
      await Promise.all([
        waitForClose(sockets, timeoutMs),
        this.node.close(timeoutMs),
        this.holders?.close(timeoutMs),
      ])
      for (const { server } of this.entries) {
        if ('closeAllConnections' in server) server.closeAllConnections()
      }
      await Promise.all(stopped)
      this.port?.wss.close()
    })()
    return this.#closed
  }

  /** Stops accepting on every server (a successor accepts on the same sockets now). */
  stopAccepting(): void {
    for (const { server } of this.entries) void this.#stop(server)
  }

  /** The listening descriptors, in the order of the configured servers. */
  listeningFds(): number[] {
    return this.entries.map(({ server }) => {
      const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd
      if (typeof fd !== 'number' || fd < 0) throw new Error('a server has no listening descriptor')
      return fd
    })
  }

  /** Refuses new sockets, closes the open ones with 4000 in waves, then close(). */
  drain(options: { windowMs?: number; waves?: number } = {}): Promise<void> {
    this.#drained ??= (async () => {
      // New sockets go elsewhere; the admin port stays up for /readyz, /metrics and POSTs.
      for (const { server, entry } of this.entries) if (entry.type === 'client') this.#stop(server)
      const sockets = this.#sockets()
      const [result] = await Promise.all([this.node.drain(options), this.holders?.drain(options)])
      await waitForClose(sockets, DRAIN_CLOSE_GRACE_MS)
      if (!this.holders) {
        this.node.options.logger.log(
          `Drained ${result.closed} client sockets in ${result.waves} waves.`
        )
      }
      await this.close()
    })()
    return this.#drained
  }

  /** Applies a re-read configuration: the node's live keys, then what Node itself holds. */
  reconfigure(next: Config, hooks: LiveHooks): Pick<ReloadReport, 'applied' | 'restartNeeded'> {
    const report = this.node.reconfigure(next)
    hooks.setLogs?.(next.logs.map((log) => log.path))
    this.holders?.reconfigure(next)
    if (this.port && report.applied.includes('limits.frameBytes')) {
      this.port.wss.options.maxPayload = this.node.config.limits.frameBytes
    }
    if (report.applied.includes('websocket.heartbeat')) {
      this.#setHeartbeat(this.node.config.websocket.heartbeat)
    }
    return report
  }

  #setHeartbeat(ms: number): void {
    if (this.#pinger) clearInterval(this.#pinger)
    this.#pinger = ms > 0 ? setInterval(() => pingAll(this.#sockets()), ms) : undefined
    this.#pinger?.unref()
  }

  #sockets(): ClientWebSocket[] {
    return this.node.connections().map((connection) => connection.socket as ClientWebSocket)
  }

  #stop(server: Server | NetServer): Promise<void> {
    let stop = this.#stops.get(server)
    if (!stop) {
      // A primary (its sockets held by workers) only accepts on its client servers.
      const client = this.entries.find((entry) => entry.server === server)?.entry.type === 'client'
      stop =
        client && this.holders !== undefined
          ? stopHandingOff(server as NetServer)
          : stopListening(server)
      this.#stops.set(server, stop)
    }
    return stop
  }
}
