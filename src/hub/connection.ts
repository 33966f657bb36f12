/** One client WebSocket and its subscriptions, as the hub indexes it. */
import { type Bucket, newBucket } from '../client/token-bucket.ts'
import type { ClientSocket } from '../ports.ts'
import type { Instance } from './instance.ts'

export class Connection {
  /** Subscription ids (PHIDs), compared as strings as Aphlict does. */
  readonly subs = new Set<string>()
  /** UTF-8 bytes of the ids in `subs` (the `limits.subscriptionBytes` budget). */
  subBytes = 0
  /** Fan-out epoch that last selected this connection; dedups targets without a Set. */
  mark = 0
  open = true
  /** Frames-per-second bucket (see src/client/token-bucket.ts). */
  readonly frameBucket: Bucket = newBucket()
  /** A replay asked for and not yet served (ms of history), or 0. */
  replayAge = 0
  /**
   * A replay from the shared history is on its way: the next one waits for it, so a client
   * has at most one outstanding (and its asks meanwhile are served as one, after it).
   */
  replaying = false

  constructor(
    readonly id: number,
    readonly instance: Instance,
    readonly socket: ClientSocket,
    /** Clock ms when it joined the hub. */
    readonly openedAt: number
  ) {}

  /** Aphlict's description of a listener, used in log lines. */
  get label(): string {
    return `<Listener/${this.id}/${this.instance.name}>`
  }
}
