/**
 * The Durable Object. One object is one shard of one instance (named `<instance>/<shard>`):
 * it accepts the client sockets the Worker sends it with the Hibernation API, and serves the
 * core's admin app for the Worker's admin requests. An idle object is evicted from memory
 * while its sockets stay open; the next event constructs it again, and it rebuilds its
 * state from SQLite storage and the sockets' attachments before handling that event.
 * The object named `~deployment` only holds the deployment's fingerprint.
 */
import { DurableObject } from 'cloudflare:workers'
import { handleFrame } from '../../src/client/frames.ts'
import { CLOSE_TOO_BIG } from '../../src/close-codes.ts'
import { generateFingerprint } from '../../src/fingerprint.ts'
import type { Clock } from '../../src/ports.ts'
import { settingsOf, type TidingsVars, type WorkerSettings } from './env.ts'
import { DEPLOYMENT_OBJECT, parseShardName } from './names.ts'
import { FetchPeerTransport } from './peer-transport.ts'
import { Shard } from './shard.ts'
import { ShardStore } from './store.ts'

export type WorkerEnv = Env & TidingsVars

/** Phorge's browser pings with exactly this text every 15 s; workerd answers it unwoken. */
export const PING_FRAME = '{"command":"ping","data":null}'
export const PONG_FRAME = '{"type":"pong"}'

const clock: Clock = { now: () => Date.now() }
const encoder = new TextEncoder()
const decoder = new TextDecoder()

function frameTooBig(message: string | ArrayBuffer, limit: number): boolean {
  if (typeof message !== 'string') return message.byteLength > limit
  // UTF-8 takes at least one byte and at most three per UTF-16 unit.
  if (message.length > limit) return true
  if (message.length * 3 <= limit) return false
  return encoder.encode(message).byteLength > limit
}

export class TidingsObject extends DurableObject<WorkerEnv> {
  readonly #store: ShardStore
  #shard: Shard | undefined
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
    const shard = this.#shard
    if (shard === undefined) {
      return Response.json(
        { error: { code: 'internal_error', message: `This shard cannot start: ${this.#broken}` } },
        { status: 500 }
      )
    }
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
      return shard.admin.fetch(request)
    }
    const { 0: client, 1: server } = new WebSocketPair()
    this.ctx.acceptWebSocket(server)
    shard.accept(server)
    return new Response(null, { status: 101, webSocket: client })
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    const shard = this.#shard
    if (shard === undefined) {
      ws.close(1011, 'unavailable')
      return
    }
    const connection = shard.registry.connectionOf(ws)
    if (connection === undefined) return
    if (frameTooBig(message, shard.settings.config.limits.frameBytes)) {
      shard.tidings.limited.frameBytes++
      shard.logger.log(`${connection.label} Closed: frame larger than "limits.frameBytes".`)
      shard.drop(ws)
      ws.close(CLOSE_TOO_BIG, 'message too big')
      return
    }
    const before = connection.subs.size
    const text = typeof message === 'string' ? message : decoder.decode(message)
    handleFrame(shard.tidings.frames, connection, text)
    shard.registry.afterFrame(ws, connection, before)
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    this.#shard?.drop(ws)
    try {
      // Completes the closing handshake where the runtime does not do it by itself.
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason)
    } catch {
      // Already closed.
    }
  }

  override webSocketError(ws: WebSocket): void {
    this.#shard?.drop(ws)
  }

  #start(instance: string, index: number, settings: WorkerSettings, fingerprint: string): void {
    const shard = new Shard({
      instance,
      index,
      settings,
      fingerprint,
      store: this.#store,
      transport: new FetchPeerTransport(),
      clock,
    })
    shard.restore(this.ctx.getWebSockets(), clock.now())
    this.#shard = shard
  }
}
