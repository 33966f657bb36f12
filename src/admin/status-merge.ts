/**
 * `/status/` for an instance served by several shards (Durable Objects on Workers): each
 * shard answers the core's status for its own sockets, and this sums them into one
 * Aphlict-shaped answer.
 */
import type { StatusBody } from '../tidings.ts'

/** A shard's own status key: sockets it rebuilt from attachments since it last woke. */
export const SHARD_RESTORED = 'shard.restored'

const AGGREGATED = new Set([
  'instance',
  'uptime',
  'clients.active',
  'clients.total',
  'messages.in',
  'messages.out',
  'version',
  'history.size',
  'history.age',
  SHARD_RESTORED,
])

const num = (value: unknown): number => (typeof value === 'number' ? value : 0)

/**
 * Sums the shards' answers (shard 0 first). Every shard receives every message, so
 * `messages.in` and the history are the same everywhere and taken once; sockets, and the
 * deliveries to them, are split between shards and added up.
 */
export function mergeStatus(shards: readonly StatusBody[]): StatusBody {
  const first = shards[0]
  if (first === undefined) throw new Error('mergeStatus needs at least one shard')
  const ages = shards.map((s) => s['history.age']).filter((age) => typeof age === 'number')
  const merged: StatusBody = {
    instance: first.instance,
    uptime: Math.max(...shards.map((s) => num(s.uptime))),
    'clients.active': shards.reduce((sum, s) => sum + num(s['clients.active']), 0),
    'clients.total': shards.reduce((sum, s) => sum + num(s['clients.total']), 0),
    'messages.in': Math.max(...shards.map((s) => num(s['messages.in']))),
    'messages.out': shards.reduce((sum, s) => sum + num(s['messages.out']), 0),
    version: first.version,
    'history.size': Math.max(...shards.map((s) => num(s['history.size']))),
    'history.age': ages.length === 0 ? null : Math.max(...ages),
  }
  // Extra keys (e.g. the relay's) come from shard 0, the one that relays.
  for (const [key, value] of Object.entries(first)) {
    if (!AGGREGATED.has(key)) merged[key] = value
  }
  merged.shards = shards.length
  merged['shards.active'] = shards.map((s) => num(s['clients.active']))
  merged['shards.restored'] = shards.map((s) => num(s[SHARD_RESTORED]))
  return merged
}
