/**
 * What the primary and the worker processes of a node with `processes` > 1 say to each
 * other over the IPC channel (structured clone, "advanced" serialization). A client socket
 * travels as the handle of a `socket` message.
 */
import type { Config } from '../../src/config/schema.ts'
import type { PublishExtras } from '../../src/hub/hub.ts'
import { outboundFromBytes } from '../../src/hub/outbound.ts'
import type { InterestChange } from '../../src/node/node.ts'
import type { ReplayAsk } from '../../src/node/primary.ts'
import type { WorkerReport } from '../../src/node/workers.ts'
import type { Outbound } from '../../src/ports.ts'

/**
 * A message one process delivered, for the sockets another process holds: the primary's to
 * its workers, a restarted node's to its predecessor while that drains.
 */
export interface Mirrored {
  instance: string
  subscribers: string[]
  bytes: Uint8Array
  postedAt: number | undefined
  id: string | undefined
}

/** The delivery a mirror was handed, as it crosses the IPC channel. */
export function mirrored(
  instance: string,
  subscribers: readonly string[],
  message: Outbound,
  extras: PublishExtras
): Mirrored {
  return {
    instance,
    subscribers: [...subscribers],
    bytes: message.bytes,
    postedAt: extras.postedAt,
    id: extras.id,
  }
}

/** The other side: the outbound message and its extras, rebuilt. */
export function unmirrored(message: Mirrored): { message: Outbound; extras: PublishExtras } {
  return {
    message: outboundFromBytes(message.bytes),
    extras: { postedAt: message.postedAt, id: message.id },
  }
}

/** Primary → worker. */
export type ToWorker =
  /** The worker's configuration and identity, first. */
  | {
      t: 'init'
      worker: number
      config: Config
      /** The node's backplane routing, if any: whether the primary needs subscriber ids. */
      follow: 'instance' | 'subscriber' | undefined
      trace: boolean
    }
  /** A client connection accepted by the primary for the `server`-th configured server. */
  | { t: 'socket'; server: number }
  /** A message to deliver and keep, as the primary delivered it. */
  | ({ t: 'message' } & Mirrored)
  | { t: 'report'; request: number }
  | { t: 'reload'; config: Config }
  /** The answer to a worker's `replay`: messages to send, or none (serve it locally). */
  | { t: 'replayed'; request: number; messages: Uint8Array[] | undefined }
  /** Are you there? (answered with `pong`; see STALL_MS in worker-pool.ts) */
  | { t: 'ping' }
  | { t: 'drain'; windowMs: number; waves: number }
  | { t: 'close' }

/** Worker → primary. */
export type ToPrimary =
  /** Set up and ready for sockets. */
  | { t: 'ready' }
  | { t: 'pong' }
  | { t: 'report'; request: number; report: WorkerReport }
  /** Sockets joined or left instances, or (routing: subscriber) ids (one turn's changes). */
  | { t: 'follow'; changes: InterestChange[] }
  /** A socket's replay (workers keep no history): the primary answers (`replayed`). */
  | ({ t: 'replay'; request: number } & ReplayAsk)
  | { t: 'drained' }
