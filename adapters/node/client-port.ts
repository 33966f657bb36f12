/**
 * The client port on Node: WebSocket upgrades on any path through `ws`, after the admission
 * checks, with one set of socket handlers shared by every connection.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type WebSocket from 'ws'
import { type RawData, WebSocketServer } from 'ws'
import { upgradeInstance } from '../../src/client/app.ts'
import { handleFrame } from '../../src/client/frames.ts'
import type { Config } from '../../src/config/schema.ts'
import type { Logger } from '../../src/ports.ts'
import type { Tidings } from '../../src/tidings.ts'
import { type Admission, refuseUpgrade } from './admission.ts'
import { ClientWebSocket } from './client-socket.ts'

export interface ClientPortOptions {
  tidings: Tidings
  config: Config
  logger: Logger
  admission: Admission
  /** True while the server shuts down or drains: new sockets are refused with 503. */
  refusing: () => boolean
}

export interface ClientPort {
  readonly wss: WebSocketServer
  /** The `upgrade` listener for every client server. */
  onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void
}

/**
 * One error listener for every upgraded socket: a closure here would live as long as the
 * socket and keep the upgrade request (headers and all) reachable with it.
 */
function destroyOnError(this: Duplex): void {
  this.destroy()
}

function frameText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8')
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8')
  return Buffer.from(data).toString('utf8')
}

export function createClientPort({
  tidings,
  config,
  logger,
  admission,
  refusing,
}: ClientPortOptions): ClientPort {
  const { perMessageDeflate } = config.websocket
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate,
    maxPayload: config.limits.frameBytes,
    WebSocket: ClientWebSocket,
  })

  // One set of handlers for every socket: `this` is the socket, so none is a per-socket closure.
  // (ws types `this` as its base class; every socket here is a ClientWebSocket.)
  function onMessage(this: WebSocket, data: RawData): void {
    const ws = this as ClientWebSocket
    ws.alive = true
    if (ws.connection) handleFrame(tidings.frames, ws.connection, frameText(data))
  }
  function onPong(this: WebSocket): void {
    ;(this as ClientWebSocket).alive = true
  }
  function onClose(this: WebSocket): void {
    const { connection } = this as ClientWebSocket
    if (!connection) return
    tidings.hub.disconnect(connection)
    if (logger.tracing) logger.trace(`${connection.label} Disconnected.`)
  }
  function onError(this: WebSocket, error: Error): void {
    // ws closes the socket with 1009 itself, before buffering the oversized frame.
    if ((error as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      tidings.limited.frameBytes++
    }
    if (logger.tracing) {
      logger.trace(
        `${(this as ClientWebSocket).connection?.label ?? '<Listener>'} Socket error: ${error.message}`
      )
    }
  }

  function onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroyOnError)
    if (refusing()) {
      refuseUpgrade(socket, {
        status: 503,
        code: 'unavailable',
        message: 'Server is shutting down.',
      })
      return
    }
    const refusal = admission.admit(request, socket)
    if (refusal) {
      refuseUpgrade(socket, refusal)
      return
    }
    const instance = upgradeInstance(request.url ?? '/')
    if (typeof instance !== 'string') {
      refuseUpgrade(socket, { status: 400, code: 'instance_invalid', message: instance.message })
      return
    }
    wss.handleUpgrade(request, socket, head, (client) => {
      const ws = client as ClientWebSocket
      if (!perMessageDeflate) ws.raw = socket as ClientWebSocket['raw']
      ws.connection = tidings.hub.connect(ws, instance)
      ws.on('message', onMessage)
      ws.on('pong', onPong)
      ws.on('close', onClose)
      ws.on('error', onError)
      if (logger.tracing) {
        logger.trace(
          `${ws.connection.label} Connected from ${request.socket.remoteAddress ?? 'unknown'}.`
        )
      }
    })
  }

  return { wss, onUpgrade }
}
