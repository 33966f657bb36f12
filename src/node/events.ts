/**
 * What a node tells the runtime around it, so a runtime that keeps state outside memory (a
 * Durable Object's storage and socket attachments) can follow along without looking inside:
 * a message kept for replay, a connection accepted, its subscriptions changed, a connection
 * gone (for any reason). Listeners run synchronously, in registration order.
 */
import type { Connection } from '../hub/connection.ts'
import type { HistoryEntry } from '../hub/history.ts'
import type { HubEvents } from '../hub/hub.ts'
import type { Instance } from '../hub/instance.ts'

export interface NodeEventMap {
  /** A message was kept in `instance`'s history (its counters have moved too). */
  kept: { instance: Instance; entry: HistoryEntry }
  /** A connection was accepted (its instance's `total` has moved). */
  connected: { connection: Connection }
  /** A connection's subscriptions changed. */
  subscribed: { connection: Connection }
  /** A connection left the hub: it closed, or was closed for a limit, a drain or a shutdown. */
  disconnected: { connection: Connection }
  /** The first socket of `instance` subscribed to `id` (present), or the last one left. */
  interest: { instance: Instance; id: string; present: boolean }
}

type Listener<K extends keyof NodeEventMap> = (event: NodeEventMap[K]) => void

export class NodeEvents {
  readonly #listeners: { [K in keyof NodeEventMap]: Listener<K>[] } = {
    kept: [],
    connected: [],
    subscribed: [],
    disconnected: [],
    interest: [],
  }

  on<K extends keyof NodeEventMap>(type: K, listener: Listener<K>): void {
    this.#listeners[type].push(listener)
  }

  /** The hub's hooks, turned into these events (none is called when nobody listens). */
  hubEvents(): HubEvents {
    const listeners = this.#listeners
    const emit = <K extends keyof NodeEventMap>(type: K, event: NodeEventMap[K]): void => {
      for (const listener of listeners[type]) listener(event)
    }
    return {
      kept: (instance, entry) => {
        if (listeners.kept.length > 0) emit('kept', { instance, entry })
      },
      connected: (connection) => {
        if (listeners.connected.length > 0) emit('connected', { connection })
      },
      subscribed: (connection) => {
        if (listeners.subscribed.length > 0) emit('subscribed', { connection })
      },
      disconnected: (connection) => {
        if (listeners.disconnected.length > 0) emit('disconnected', { connection })
      },
      interest: (instance, id, present) => {
        if (listeners.interest.length > 0) emit('interest', { instance, id, present })
      },
    }
  }
}
