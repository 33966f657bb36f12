/**
 * The Node client socket: a `ws` WebSocket subclass that is itself the core's ClientSocket,
 * so a connection costs one object and no per-socket closures.
 *
 * Sending writes one pre-built frame per message straight to the TCP socket, corked for the
 * rest of the event-loop turn: every frame a socket gets in one turn leaves in one write.
 * That is only safe while ws itself never queues frames, i.e. with permessage-deflate off;
 * with it on, sends go through `ws.send`.
 */
import type { Socket } from 'node:net'
import WebSocket from 'ws'
import type { Connection } from '../../src/hub/connection.ts'
import type { ClientSocket, Outbound } from '../../src/ports.ts'
import { frameOf } from './frame.ts'

const corked: ClientWebSocket[] = []
let flushScheduled = false

function flush(): void {
  flushScheduled = false
  for (const socket of corked) {
    socket.corked = false
    socket.raw?.uncork()
  }
  corked.length = 0
}

export class ClientWebSocket extends WebSocket implements ClientSocket {
  /** Set once the hub has accepted the socket. */
  connection: Connection | undefined = undefined
  /** The TCP socket from the upgrade; undefined when frames must go through ws. */
  raw: Socket | undefined = undefined
  corked = false
  /** Cleared on each heartbeat, set by any sign of life. */
  alive = true

  sendMessage(message: Outbound): void {
    if (this.readyState !== WebSocket.OPEN) return
    const raw = this.raw
    if (raw === undefined) {
      this.send(message.bytes, { binary: false })
      return
    }
    if (!this.corked) {
      this.corked = true
      raw.cork()
      corked.push(this)
      if (!flushScheduled) {
        flushScheduled = true
        setImmediate(flush)
      }
    }
    raw.write(frameOf(message))
  }
}
