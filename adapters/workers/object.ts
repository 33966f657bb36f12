/**
 * The Durable Object. One object is one shard of one instance (named `<instance>/<shard>`): a
 * core node (src/node/node.ts) whose client sockets are the object's hibernatable WebSockets
 * and whose admin app answers the Worker's admin requests. This class only turns platform
 * events into calls on the node; what must outlive eviction goes to storage through the
 * node's events (persistence.ts) and the sockets' attachments (registry.ts), and comes back
 * on the next wake. The object named `~deployment` only holds the deployment's fingerprint.
 */
import { DurableObject } from 'cloudflare:workers'
import { SHARD_RESTORED } from '../../src/admin/status-merge.ts'
import { RequestError } from '../../src/errors.ts'
import { generateFingerprint } from '../../src/fingerprint.ts'
import { createNode, type TidingsNode } from '../../src/node/node.ts'
import type { Clock } from '../../src/ports.ts'
import { settingsOf, type TidingsVars, type WorkerSettings } from './env.ts'
import { ConsoleLogger } from './logger.ts'
import { DEPLOYMENT_OBJECT, parseShardName } from './names.ts'
import { fetchPeerTransport } from './peer-transport.ts'
import { persist, restore } from './persistence.ts'
import { SocketRegistry } from './registry.ts'
import { ShardStore } from './store.ts'

export type WorkerEnv = { TIDINGS: DurableObjectNamespace<TidingsObject> } & TidingsVars

/** Phorge's browser pings with exactly this text every 15 s; workerd answers it unwoken. */
export const PING_FRAME = '{"command":"ping","data":null}'
export const PONG_FRAME = '{"type":"pong"}'

const clock: Clock = { now: () => Date.now() }

export class TidingsObject extends DurableObject<WorkerEnv> {
  readonly #store: ShardStore
  #node: TidingsNode | undefined
  #registry: SocketRegistry | undefined
  #broken = 'not started'

  constructor(ctx: DurableObjectState, env: WorkerEnv) {
    super(ctx, env)
    this.#store = new ShardStore(ctx.storage.sql)
    const name = ctx.id.name ?? ''
    if (name === DEPLOYMENT_OBJECT) return
    const place = parseShardName(name)
    const settings = settingsOf(env)
    if (place === undefined) {
      this.#broken = `unexpected object name "${name}"`
      return
    }
    if (settings instanceof Error) {
      this.#broken = settings.message
      return
    }
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME))
    const fingerprint = this.#store.meta('fingerprint')
    if (fingerprint !== undefined) {
      this.#start(place.instance, place.shard, settings, fingerprint)
      return
    }
    // A shard's first start: every shard stamps messages with the deployment's fingerprint.
    ctx.blockConcurrencyWhile(async () => {
      const deployment = env.TIDINGS.get(env.TIDINGS.idFromName(DEPLOYMENT_OBJECT))
      const shared = await deployment.fingerprint()
      this.#store.setMeta('fingerprint', shared)
      this.#start(place.instance, place.shard, settings, shared)
    })
  }

  /** RPC to `~deployment`: the deployment's fingerprint, generated once and kept. */
  fingerprint(): string {
    let fingerprint = this.#store.meta('fingerprint')
    if (fingerprint === undefined) {
      fingerprint = generateFingerprint()
      this.#store.setMeta('fingerprint', fingerprint)
    }
    return fingerprint
  }

  override async fetch(request: Request): Promise<Response> {
    const node = this.#node
    const registry = this.#registry
    if (node === undefined || registry === undefined) {
      const message = `This shard cannot start: ${this.#broken}`
      return new RequestError('config_invalid', 500, message).toResponse()
    }
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
      return node.admin.fetch(request)
    }
    const verdict = node.admit(undefined, {
      target: request.url,
      origin: request.headers.get('origin'),
    })
    if (verdict instanceof RequestError) return verdict.toResponse()
    const { 0: client, 1: server } = new WebSocketPair()
    this.ctx.acceptWebSocket(server)
    const connection = registry.accept(server, verdict)
    if (node.options.logger.tracing) node.options.logger.trace(`${connection.label} Connected.`)
    return new Response(null, { status: 101, webSocket: client })
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    const connection = this.#registry?.connectionOf(ws)
    if (connection === undefined) {
      if (this.#node === undefined) ws.close(1011, 'unavailable')
      return
    }
    this.#node?.frame(connection, message)
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    this.#registry?.remove(ws)
    try {
      // Completes the closing handshake where the runtime does not do it by itself.
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason)
    } catch {
      // Already closed.
    }
  }

  override webSocketError(ws: WebSocket): void {
    this.#registry?.remove(ws)
  }

  #start(instance: string, index: number, settings: WorkerSettings, fingerprint: string): void {
    const logger = new ConsoleLogger(settings.trace, `[${instance}/${index}] `)
    let startedAt = Number(this.#store.meta('startedAt'))
    if (!Number.isFinite(startedAt) || startedAt <= 0) {
      startedAt = clock.now()
      this.#store.setMeta('startedAt', String(startedAt))
    }
    const node = createNode({
      config: settings.config,
      clock,
      logger,
      scheduler: { defer: (task) => setTimeout(task, 0) },
      transport: fetchPeerTransport,
      fingerprint,
      // Every shard receives every message; only shard 0 passes them on to the cluster.
      relays: index === 0,
      secret: { required: true, open: settings.open, everyRoute: true },
      runtime: {
        statusExtras: (status) => {
          // The shard's uptime, not this wake-up's; and how many sockets the wake restored.
          status.uptime = clock.now() - startedAt
          status[SHARD_RESTORED] = registry.restored
        },
      },
    })
    node.state.listening = true
    const registry = new SocketRegistry(node, logger)
    registry.restore(this.ctx.getWebSockets())
    // After the sockets: the stored counters already count them.
    restore(node, this.#store, instance)
    persist(node, this.#store)
    this.#node = node
    this.#registry = registry
  }
}
