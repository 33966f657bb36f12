/**
 * The client port on Node: TCP connections, upgrades, frames and closes mapped onto the
 * node (src/node/node.ts), with `ws` for the WebSocket protocol and one set of socket
 * handlers shared by every connection. Every path is total: whatever throws, the socket is
 * answered (or, once upgraded, closed) and its lease released when it closes.
 */
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type WebSocket from 'ws'
import { type RawData, WebSocketServer } from 'ws'
import type { Lease } from '../../src/client/admission.ts'
import type { Config } from '../../src/config/schema.ts'
import { RequestError } from '../../src/errors.ts'
import type { TidingsNode } from '../../src/node/node.ts'
import type { Logger } from '../../src/ports.ts'
import { ClientWebSocket } from './client-socket.ts'

export interface ClientPort {
  readonly wss: WebSocketServer
  /** The `connection` listener for every client server (takes the lease). */
  onConnection(socket: Socket): void
  /** The `upgrade` listener for every client server. */
  onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
}

/** Answers a refused connection or upgrade with its status and JSON body, then closes it. */
export function refuse(socket: Duplex, error: RequestError): void {
  if (socket.destroyed) return
  const body = `${JSON.stringify(error.toJSON())}\n`
  const retry = error.retryAfter === undefined ? '' : `Retry-After: ${error.retryAfter}\r\n`
  const head = `HTTP/1.1 ${error.status} ${STATUS_TEXT[error.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retry}Connection: close\r\n\r\n`
  socket.end(head + body, () => socket.destroy())
}

/**
 * One error listener for every socket: a closure here would live as long as the socket
 * and keep the upgrade request (headers and all) reachable with it.
 */
function destroyOnError(this: Duplex): void {
  this.destroy()
}

function frameText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8')
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8')
  return Buffer.from(data).toString('utf8')
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value.join(',') : value
}

export function createClientPort(node: TidingsNode, config: Config, logger: Logger): ClientPort {
  const { perMessageDeflate } = config.websocket
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate,
    // ws refuses a larger frame from its header, before buffering it; the node counts it.
    maxPayload: config.limits.frameBytes,
    WebSocket: ClientWebSocket,
  })
  /** The lease of each accepted TCP socket (for TLS, of the raw socket under it). */
  const leases = new WeakMap<Duplex, Lease>()

  function onSocketClose(this: Duplex): void {
    const lease = leases.get(this)
    if (lease) node.release(lease)
  }

  function onConnection(socket: Socket): void {
    socket.on('error', destroyOnError)
    try {
      const lease = node.accept(socket.remoteAddress ?? '', socket)
      if (lease instanceof RequestError) {
        refuse(socket, lease)
        return
      }
      leases.set(socket, lease)
      socket.once('close', onSocketClose)
    } catch (error) {
      node.tidings.log.log('client:internal_error', `Client connection failed: ${String(error)}`)
      socket.destroy()
    }
  }

  /** The lease of an upgrading socket: its own, or for TLS its raw socket's. */
  function leaseOf(socket: Duplex): Lease | undefined {
    return leases.get(socket) ?? leases.get((socket as { _parent?: Duplex })._parent as Duplex)
  }

  // One set of handlers for every socket: `this` is the socket, so none is a per-socket closure.
  // (ws types `this` as its base class; every socket here is a ClientWebSocket.)
  function onMessage(this: WebSocket, data: RawData): void {
    const ws = this as ClientWebSocket
    ws.alive = true
    if (ws.connection) node.frame(ws.connection, frameText(data))
  }
  function onPong(this: WebSocket): void {
    ;(this as ClientWebSocket).alive = true
  }
  function onClose(this: WebSocket): void {
    const { connection } = this as ClientWebSocket
    if (!connection) return
    node.closed(connection)
    if (logger.tracing) logger.trace(`${connection.label} Disconnected.`)
  }
  function onError(this: WebSocket, error: Error): void {
    const { connection } = this as ClientWebSocket
    if ((error as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      node.oversized(connection)
    }
    if (logger.tracing)
      logger.trace(`${connection?.label ?? '<Listener>'} Socket error: ${error.message}`)
  }

  function onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroyOnError)
    let upgraded = false
    try {
      const verdict = node.admit(leaseOf(socket), {
        target: request.url ?? '/',
        origin: header(request, 'origin'),
        forwardedFor: header(request, 'x-forwarded-for'),
      })
      if (verdict instanceof RequestError) {
        refuse(socket, verdict)
        return
      }
      wss.handleUpgrade(request, socket, head, (client) => {
        upgraded = true
        const ws = client as ClientWebSocket
        if (!perMessageDeflate) ws.raw = socket as ClientWebSocket['raw']
        ws.connection = node.open(ws, verdict)
        ws.on('message', onMessage)
        ws.on('pong', onPong)
        ws.on('close', onClose)
        ws.on('error', onError)
        if (logger.tracing) {
          const from = request.socket.remoteAddress ?? 'unknown'
          logger.trace(`${ws.connection.label} Connected from ${from}.`)
        }
      })
    } catch (error) {
      node.tidings.log.log(
        'client:bad_upgrade',
        `Bad upgrade request from ${request.socket?.remoteAddress ?? '<unknown>'}: ${error instanceof Error ? error.message : String(error)}`
      )
      if (upgraded) socket.destroy()
      else
        refuse(
          socket,
          new RequestError('bad_request', 400, 'The upgrade request could not be handled.')
        )
    }
  }

  return { wss, onConnection, onUpgrade }
}
