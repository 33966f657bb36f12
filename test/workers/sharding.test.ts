/**
 * An instance spread over four Durable Objects: the Worker hands upgrades to the shards in
 * turn, an admin POST reaches the sockets on every shard, `/status/` sums the shards, and
 * every shard keeps the history, so a client replays wherever it lands.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { post, status, type Target } from '../contract/target.ts'
import { workerTarget } from '../helpers/worker-target.ts'
import { connect, type TestClient } from '../helpers/ws-client.ts'

const SHARDS = 4

describe('workers adapter: sharding', { timeout: 30_000 }, () => {
  let target: Target
  beforeAll(async () => {
    target = await workerTarget({ shards: SHARDS })
  })
  afterAll(async () => {
    await target?.close()
  })

  async function clients(instance: string, count: number, ids: string[]): Promise<TestClient[]> {
    const list: TestClient[] = []
    for (let i = 0; i < count; i++) {
      const client = await connect(`${target.clientUrl}/~${instance}/`)
      client.send({ command: 'subscribe', data: ids })
      await client.ping()
      list.push(client)
    }
    return list
  }

  it('delivers one POST to the sockets of every shard and sums them in /status/', async () => {
    const instance = 'sharded'
    // Consecutive upgrades go to consecutive shards: one socket lands on each.
    const subscribed = await clients(instance, SHARDS, ['PHID-S'])
    const [other] = await clients(instance, 1, ['PHID-OTHER'])
    const before = await status(target, instance)
    expect(before.shards).toBe(SHARDS)
    expect((before['shards.active'] as number[]).slice().sort()).toEqual([1, 1, 1, 2])

    const reply = await post(
      target,
      { key: 'k1', subscribers: ['PHID-S'] },
      `?instance=${instance}`
    )
    expect(reply.status).toBe(200)
    const fingerprint = (reply.json as { fingerprint: string }).fingerprint
    for (const client of subscribed) {
      // Every shard stamps the deployment's one fingerprint.
      expect(await client.next()).toMatchObject({ key: 'k1', touched: [fingerprint] })
    }
    await other?.silence()

    const after = await status(target, instance)
    expect(after).toMatchObject({
      instance,
      'clients.active': SHARDS + 1,
      'clients.total': SHARDS + 1,
      'messages.in': 1,
      'messages.out': SHARDS,
      'history.size': 1,
    })
    await Promise.all([...subscribed, other].map((client) => client?.close()))
  })

  it('replays the history on whichever shard a client lands on', async () => {
    const instance = 'sharded-replay'
    await post(target, { n: 'old', subscribers: ['PHID-R'] }, `?instance=${instance}`)
    const list = await clients(instance, SHARDS, ['PHID-R'])
    for (const client of list) {
      client.send({ command: 'replay', data: { age: 60_000 } })
      expect((await client.next()).n).toBe('old')
    }
    await Promise.all(list.map((client) => client.close()))
  })
})
