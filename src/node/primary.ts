/**
 * What the primary of a node with worker processes (`processes` > 1) does for its workers,
 * runtime-free; the Node adapter's worker pool carries it over IPC. It answers their sockets'
 * replays from the node's history (or its backplane's), never more than a socket has room
 * for, and it keeps what their sockets hold: the instances they are on (so that those
 * instances and their counters live on in the primary, which holds no socket itself) and,
 * with a backplane routing by subscriber, the ids they need. A worker's share is let go when
 * it dies.
 */
import type { Connection } from '../hub/connection.ts'
import { withinRoom } from '../hub/output-budget.ts'
import type { Outbound } from '../ports.ts'
import type { InterestChange, TidingsNode } from './node.ts'

/** A worker's socket asks for a replay. */
export interface ReplayAsk {
  instance: string
  subscribers: string[]
  since: number
  requestedAt: number
  /** Bytes the socket can take now: the answer stops at the first message past them. */
  room: number
}

export class Primary {
  /** Per worker: what its sockets hold, as counts by [instance, id]. */
  readonly #held = new Map<number, Map<string, number>>()

  constructor(private readonly node: TidingsNode) {}

  /** A worker's sockets joined or left an instance, or (routing by subscriber) an id. */
  follow(worker: number, change: InterestChange): void {
    let held = this.#held.get(worker)
    if (!held) {
      held = new Map()
      this.#held.set(worker, held)
    }
    const key = JSON.stringify([change.instance, change.id ?? null])
    const count = (held.get(key) ?? 0) + (change.present ? 1 : -1)
    if (count < 0) return
    if (count === 0) held.delete(key)
    else held.set(key, count)
    this.#apply(change)
  }

  /** A worker is gone, and its sockets with it. */
  letGo(worker: number): void {
    const held = this.#held.get(worker)
    this.#held.delete(worker)
    for (const [key, count] of held ?? []) {
      const [instance, id] = JSON.parse(key) as [string, string | null]
      for (let i = 0; i < count; i++) this.#apply({ instance, id: id ?? undefined, present: false })
    }
  }

  #apply(change: InterestChange): void {
    if (change.id === undefined) {
      this.node.tidings.hub.holdElsewhere(change.instance, change.present ? 1 : -1)
    }
    this.node.follow(change)
  }

  /** The messages a worker's socket gets for its replay: the matching history, within its room. */
  async replay(ask: ReplayAsk): Promise<readonly Outbound[]> {
    const { hub } = this.node.tidings
    const instance =
      hub.find(ask.instance) ?? (hub.canHold(ask.instance) ? hub.instance(ask.instance) : undefined)
    if (!instance) return []
    const subs = new Set(ask.subscribers)
    // What a connection is to the backplane, for a socket held elsewhere.
    const stand = { instance, subs, open: true } as unknown as Connection
    const shared = this.node.backplane?.replay(stand, ask.since, ask.requestedAt)
    const fromShared = shared ? await shared.catch(() => undefined) : undefined
    const messages = fromShared ?? hub.historyOf(instance, subs, ask.since, ask.requestedAt)
    return withinRoom(messages, ask.room)
  }
}
