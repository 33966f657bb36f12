/**
 * What a shard keeps in its Durable Object's storage, fed by the node's events: each message
 * kept for replay (trimmed to the same length as the history), and the instance's counters.
 * On a wake, restore() hands them back to the node.
 */
import type { TidingsNode } from '../../src/node/node.ts'
import type { ShardStore } from './store.ts'

function counters(instance: { total: number; messagesIn: number; messagesOut: number }) {
  return {
    total: instance.total,
    messagesIn: instance.messagesIn,
    messagesOut: instance.messagesOut,
  }
}

/** Writes through to `store` what the node keeps from now on. */
export function persist(node: TidingsNode, store: ShardStore): void {
  node.events.on('kept', ({ instance, entry }) => {
    store.append(
      { at: entry.at, subscribers: [...entry.subscribers], text: entry.message.text },
      instance.history.size
    )
    store.saveCounters(counters(instance))
  })
  node.events.on('connected', ({ connection }) => store.saveCounters(counters(connection.instance)))
}

/** Gives a freshly constructed node what `store` kept of `instance`. */
export function restore(node: TidingsNode, store: ShardStore, instance: string): void {
  const since = node.options.clock.now() - node.config.history.age
  node.restore(instance, { history: store.history(since), counters: store.counters() })
  store.keep(node.tidings.hub.find(instance)?.history.size ?? 0)
}
