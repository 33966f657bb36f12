/** `/status/` of a sharded instance: the shards' answers summed into one Aphlict answer. */
import { describe, expect, it } from 'vitest'
import { mergeStatus, SHARD_RESTORED } from '../../src/admin/status-merge.ts'
import type { StatusBody } from '../../src/tidings.ts'

const shard = (extra: Partial<StatusBody> & Record<string, unknown>): StatusBody => ({
  instance: 'i',
  uptime: 1000,
  'clients.active': 0,
  'clients.total': 0,
  'messages.in': 0,
  'messages.out': 0,
  version: 7,
  'history.size': 0,
  'history.age': null,
  ...extra,
})

describe('workers adapter: status of a sharded instance', () => {
  it('adds up sockets and deliveries, and takes messages in and history once', () => {
    const merged = mergeStatus([
      shard({
        uptime: 5000,
        'clients.active': 2,
        'clients.total': 3,
        'messages.in': 4,
        'messages.out': 6,
        'history.size': 4,
        'history.age': 900,
        fingerprint: 'F',
        [SHARD_RESTORED]: 2,
      }),
      shard({
        uptime: 7000,
        'clients.active': 1,
        'clients.total': 5,
        'messages.in': 3,
        'messages.out': 2,
        'history.size': 3,
        'history.age': 800,
        fingerprint: 'ignored',
      }),
    ])
    expect(merged).toEqual({
      instance: 'i',
      uptime: 7000,
      'clients.active': 3,
      'clients.total': 8,
      'messages.in': 4,
      'messages.out': 8,
      version: 7,
      'history.size': 4,
      'history.age': 900,
      fingerprint: 'F',
      shards: 2,
      'shards.active': [2, 1],
      'shards.restored': [2, 0],
    })
    expect(Object.keys(merged).slice(0, 9)).toEqual(Object.keys(shard({})))
  })

  it('reports no history age when no shard has any', () => {
    expect(mergeStatus([shard({}), shard({})])['history.age']).toBeNull()
  })
})
