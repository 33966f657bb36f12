/**
 * Hibernation in real local workerd: a Durable Object whose sockets are all hibernatable is
 * evicted from memory after about 10 s without events (auto-answered pings do not count).
 * The test leaves the object idle past that, then checks that the next event found a new
 * object that rebuilt its sockets, subscriptions, history and counters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { post, status, type Target } from '../contract/target.ts'
import { workerTarget } from '../helpers/worker-target.ts'
import { connect, type TestClient } from '../helpers/ws-client.ts'

/** workerd evicts an idle object after 10 s; a margin for a busy machine. */
const IDLE_MS = 13_000
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms))

describe('workers adapter: hibernation', { timeout: 40_000 }, () => {
  let target: Target
  beforeAll(async () => {
    target = await workerTarget()
  })
  afterAll(async () => {
    await target?.close()
  })

  it('keeps subscriptions, history and counters across an eviction, and answers pings while evicted', async () => {
    const instance = 'hibernate'
    const client: TestClient = await connect(`${target.clientUrl}/~${instance}/`)
    client.send({ command: 'subscribe', data: ['PHID-A', 'PHID-B'] })
    client.send({ command: 'unsubscribe', data: ['PHID-B'] })
    await client.ping()
    await post(target, { n: 'before', subscribers: ['PHID-A'] }, `?instance=${instance}`)
    expect((await client.next()).n).toBe('before')
    const awake = await status(target, instance)
    expect(awake['shards.restored']).toEqual([0])

    await sleep(IDLE_MS / 2)
    // Phorge's exact ping text is answered by the runtime, without waking the object.
    await client.ping()
    await sleep(IDLE_MS / 2)

    const woken = await status(target, instance)
    // A new object: it rebuilt the one open socket from its attachment.
    expect(woken['shards.restored']).toEqual([1])
    expect(woken).toMatchObject({
      'clients.active': 1,
      'clients.total': 1,
      'messages.in': 1,
      'messages.out': 1,
      'history.size': 1,
    })

    await post(target, { n: 'after', subscribers: ['PHID-A', 'PHID-B'] }, `?instance=${instance}`)
    expect((await client.next()).n).toBe('after')
    await post(target, { n: 'unsubscribed', subscribers: ['PHID-B'] }, `?instance=${instance}`)
    await client.silence()

    // The history written before the eviction replays from storage.
    const late = await connect(`${target.clientUrl}/~${instance}/`)
    late.send({ command: 'subscribe', data: ['PHID-A'] })
    late.send({ command: 'replay', data: { age: 60_000 } })
    expect((await late.next()).n).toBe('before')
    expect((await late.next()).n).toBe('after')
    await late.ping()
    expect((await status(target, instance))['clients.total']).toBe(2)
    await Promise.all([client.close(), late.close()])
  })
})
