/** One client WebSocket and its subscriptions, as the hub indexes it. */
import type { ClientSocket } from '../ports.ts'
import type { Instance } from './instance.ts'

export class Connection {
  /** Subscription ids (PHIDs), compared as strings as Aphlict does. */
  readonly subs = new Set<string>()
  /** Fan-out epoch that last selected this connection; dedups targets without a Set. */
  mark = 0
  open = true
  /** Frame-rate bucket (see src/client/rate-limit.ts): frames left, and when it was last filled. */
  frameTokens = 0
  frameAt = Number.NEGATIVE_INFINITY

  constructor(
    readonly id: number,
    readonly instance: Instance,
    readonly socket: ClientSocket
  ) {}

  /** Aphlict's description of a listener, used in log lines. */
  get label(): string {
    return `<Listener/${this.id}/${this.instance.name}>`
  }
}
