/**
 * The Node client socket: a `ws` WebSocket subclass that is itself the core's ClientSocket,
 * so a connection costs one object and no per-socket closures.
 *
 * Sending is batched per event-loop turn: a socket remembers which messages it got this
 * turn as a node of a per-turn chain tree (see Batch), and on `setImmediate` every socket
 * is written once, with the concatenated frames of its chain. Sockets that got the same
 * messages in the same order (a broadcast) share one node, hence one Buffer: the frames are
 * joined once per distinct sequence, not once per socket, and each socket costs one
 * `write()` per turn whatever the number of messages. Frames go straight to the TCP socket
 * from the upgrade, which is only safe while ws itself never queues frames, i.e. with
 * permessage-deflate off; with it on, sends go through `ws.send`.
 */
import type { Socket } from 'node:net'
import WebSocket from 'ws'
import type { Connection } from '../../src/hub/connection.ts'
import type { ClientSocket, Outbound } from '../../src/ports.ts'
import { frameOf, frameStats } from './frame.ts'

/**
 * One sequence of messages sent in the current turn: the parent's sequence plus `message`.
 * Children are keyed by message identity; almost always there is one, kept in fields.
 */
class Batch {
  childKey: Outbound | undefined = undefined
  child: Batch | undefined = undefined
  children: Map<Outbound, Batch> | undefined = undefined
  joined: Buffer | undefined = undefined

  constructor(
    readonly parent: Batch | undefined,
    readonly message: Outbound | undefined,
    readonly depth: number
  ) {}

  /** The node for this sequence followed by `message`. */
  next(message: Outbound): Batch {
    if (this.childKey === message) return this.child as Batch
    if (this.childKey === undefined) {
      const child = new Batch(this, message, this.depth + 1)
      this.childKey = message
      this.child = child
      return child
    }
    let children = this.children
    if (children === undefined) {
      children = new Map()
      this.children = children
    }
    let child = children.get(message)
    if (child === undefined) {
      child = new Batch(this, message, this.depth + 1)
      children.set(message, child)
    }
    return child
  }

  /** Every frame of the sequence, in order, as one Buffer (built once per node). */
  bytes(): Buffer {
    if (this.depth === 1) return frameOf(this.message as Outbound)
    let joined = this.joined
    if (joined === undefined) {
      const frames = new Array<Buffer>(this.depth)
      let node: Batch = this
      for (let i = this.depth - 1; i >= 0; i--) {
        frames[i] = frameOf(node.message as Outbound)
        node = node.parent as Batch
      }
      joined = Buffer.concat(frames)
      this.joined = joined
      frameStats.joins++
    }
    return joined
  }
}

let root = new Batch(undefined, undefined, 0)
/** Sockets with a batch this turn; two lists swapped each turn, so neither is reallocated. */
let pending: ClientWebSocket[] = []
let spare: ClientWebSocket[] = []
let flushScheduled = false

/** Writes every socket's batch of this turn, then starts a fresh tree for the next. */
function flush(): void {
  flushScheduled = false
  const sockets = pending
  pending = spare
  root = new Batch(undefined, undefined, 0)
  for (let i = 0; i < sockets.length; i++) (sockets[i] as ClientWebSocket).flushBatch()
  sockets.length = 0
  spare = sockets
}

export class ClientWebSocket extends WebSocket implements ClientSocket {
  /** Set once the hub has accepted the socket. */
  connection: Connection | undefined = undefined
  /** The TCP socket from the upgrade; undefined when frames must go through ws. */
  raw: Socket | undefined = undefined
  /** What this socket has been sent this turn and not yet written; undefined when nothing. */
  batch: Batch | undefined = undefined
  /** Payload bytes in `batch`, counted in `pending` (the output budget sees them). */
  batchBytes = 0
  /** Cleared on each heartbeat, set by any sign of life. */
  alive = true

  /** Waiting output: this turn's batch plus what ws and the TCP socket have not sent yet. */
  get pending(): number {
    return this.bufferedAmount + this.batchBytes
  }

  sendMessage(message: Outbound): void {
    if (this.readyState !== WebSocket.OPEN) return
    if (this.raw === undefined) {
      this.send(message.bytes, { binary: false })
      return
    }
    this.batchBytes += message.bytes.byteLength
    const batch = this.batch
    if (batch !== undefined) {
      this.batch = batch.next(message)
      return
    }
    this.batch = root.next(message)
    pending.push(this)
    if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flush)
    }
  }

  /** Writes this turn's frames now (also before a close frame, so that it goes last). */
  flushBatch(): void {
    const batch = this.batch
    if (batch === undefined) return
    this.batch = undefined
    this.batchBytes = 0
    if (this.readyState === WebSocket.OPEN) this.raw?.write(batch.bytes())
  }

  override close(code?: number, reason?: string | Buffer): void {
    this.flushBatch()
    super.close(code, reason)
  }
}
