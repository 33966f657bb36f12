/**
 * Client sockets under the WebSocket Hibernation API. A hibernated Durable Object loses all
 * memory but keeps its sockets, each with a small serialised attachment; tidings keeps the
 * socket's instance and subscriptions there, and rebuilds the hub's index from them when the
 * object wakes. Typed structurally so it runs (and is unit-tested) outside workerd too.
 */
import { CLOSE_POLICY, CLOSE_REASONS } from '../../src/close-codes.ts'
import type { Connection } from '../../src/hub/connection.ts'
import type { TidingsNode } from '../../src/node/node.ts'
import type { ClientSocket, Logger, Outbound } from '../../src/ports.ts'
import {
  ATTACHMENT_BYTES,
  attachmentBytes,
  CLOSE_STATE_LOST,
  decodeAttachment,
  encodeAttachment,
} from './attachment.ts'

/** The part of a workerd WebSocket the registry uses. */
export interface HibernatableSocket {
  send(message: string): void
  close(code?: number, reason?: string): void
  serializeAttachment(value: unknown): void
  deserializeAttachment(): unknown
}

/** The core's view of a workerd socket. workerd exposes no send buffer, so it reads as 0. */
export class WorkersClientSocket implements ClientSocket {
  readonly pending = 0
  constructor(readonly ws: HibernatableSocket) {}

  sendMessage(message: Outbound): void {
    try {
      // workerd sends a string as a text frame; decode once per message, not per socket.
      let text = message.cache as string | undefined
      if (text === undefined) {
        text = message.text
        message.cache = text
      }
      this.ws.send(text)
    } catch {
      // The socket is closing; its close event removes it from the hub.
    }
  }

  close(code: number, reason: string): void {
    try {
      this.ws.close(code, reason)
    } catch {
      // Already closed.
    }
  }
}

/**
 * The open sockets of one Durable Object and their connections. Subscriptions are written to
 * each socket's attachment when the node says they changed (a socket whose subscriptions
 * would not fit is closed with 1008), and a socket the node lets go is forgotten.
 */
export class SocketRegistry {
  readonly #connections = new Map<HibernatableSocket, Connection>()
  readonly #sockets = new Map<Connection, HibernatableSocket>()
  /** Sockets rebuilt from attachments when this object last woke (for status). */
  restored = 0
  #restoring = false

  constructor(
    private readonly node: TidingsNode,
    private readonly logger: Logger
  ) {
    node.events.on('subscribed', ({ connection }) => this.#store(connection))
    node.events.on('disconnected', ({ connection }) => this.#forget(connection))
  }

  /** A socket just accepted for `instance`: no subscriptions yet. */
  accept(ws: HibernatableSocket, instance: string): Connection {
    ws.serializeAttachment(encodeAttachment(instance, []))
    return this.#open(ws, instance)
  }

  /** Rebuilds connections and the subscription index from the sockets' attachments. */
  restore(sockets: Iterable<HibernatableSocket>): number {
    let count = 0
    for (const ws of sockets) {
      if (!this.#connections.has(ws) && this.#restoreOne(ws)) count++
    }
    this.restored += count
    return count
  }

  /** The socket's connection; a socket not seen since the object woke is restored first. */
  connectionOf(ws: HibernatableSocket): Connection | undefined {
    const connection = this.#connections.get(ws)
    if (connection !== undefined) return connection
    if (!this.#restoreOne(ws)) return undefined
    this.restored++
    return this.#connections.get(ws)
  }

  /** The socket closed or failed. Safe to call more than once. */
  remove(ws: HibernatableSocket): Connection | undefined {
    const connection = this.#connections.get(ws)
    if (connection === undefined) return undefined
    this.node.closed(connection)
    return connection
  }

  get size(): number {
    return this.#connections.size
  }

  #open(ws: HibernatableSocket, instance: string): Connection {
    const connection = this.node.open(new WorkersClientSocket(ws), instance)
    this.#connections.set(ws, connection)
    this.#sockets.set(connection, ws)
    return connection
  }

  #forget(connection: Connection): void {
    const ws = this.#sockets.get(connection)
    if (ws === undefined) return
    this.#sockets.delete(connection)
    this.#connections.delete(ws)
  }

  /** Writes the connection's subscriptions to its socket, or closes it when they do not fit. */
  #store(connection: Connection): void {
    const ws = this.#sockets.get(connection)
    if (ws === undefined || this.#restoring) return
    const text = encodeAttachment(connection.instance.name, connection.subs)
    try {
      if (attachmentBytes(text) > ATTACHMENT_BYTES) throw new Error('too large')
      ws.serializeAttachment(text)
    } catch {
      this.#refuse(connection)
    }
  }

  #restoreOne(ws: HibernatableSocket): boolean {
    let value: unknown
    try {
      value = ws.deserializeAttachment()
    } catch {
      value = undefined
    }
    const state = decodeAttachment(value)
    if (state === undefined) {
      this.logger.log('<Listener> Closed: its state could not be restored after a wake.')
      new WorkersClientSocket(ws).close(CLOSE_STATE_LOST, 'state lost, reconnect')
      return false
    }
    const connection = this.#open(ws, state.instance)
    this.#restoring = true
    // Only a lowered limit (a new deployment, which closes sockets anyway) can refuse these.
    const refused = this.node.tidings.hub.subscribe(connection, state.subs) !== undefined
    this.#restoring = false
    if (refused) {
      this.#refuse(connection)
      return false
    }
    return true
  }

  #refuse(connection: Connection): void {
    this.logger.log(
      `${connection.label} Closed with 1008: subscriptions do not fit in the socket's attachment.`
    )
    this.node.closed(connection)
    connection.socket.close(CLOSE_POLICY, CLOSE_REASONS.subscriptionBytes)
  }
}
