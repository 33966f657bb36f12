/**
 * Three `tidings run` processes on one real redis-server, under steady traffic: a node is
 * killed with SIGKILL, Redis is stopped for seconds and started again, and a browser moves
 * to another node and replays. Every client must get every message it is owed exactly once.
 */
import { describe, expect, it } from 'vitest'
import { cleanups } from '../helpers/cleanups.ts'
import {
  type NodePorts,
  nodePorts,
  postMessage,
  type Subscriber,
  subscriber,
  TidingsProcess,
} from '../helpers/cluster.ts'
import { OWED_MS } from '../helpers/patience.ts'
import { RedisServer, redisAvailable } from '../helpers/redis.ts'
import { eventually } from '../helpers/ws-client.ts'

const later = cleanups()

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const TEXT = 'Grüße 🚀 — 通知'

/** Posts round-robin to the nodes still in `targets` every `everyMs`, until stopped. */
function traffic(targets: TidingsProcess[], everyMs: number) {
  const accepted = new Map<string, number>() // key → index of the node that took it
  const acceptedAt = new Map<string, number>()
  let running = true
  let n = 0
  const done = (async () => {
    while (running) {
      const live = targets.filter((target) => target.running)
      const index = n % live.length
      const target = live[index] as TidingsProcess
      const key = `m${n++}`
      const status = await postMessage(
        target.adminUrl,
        { key, text: TEXT, subscribers: ['P'] },
        {
          timeoutMs: OWED_MS,
        }
      ).catch(() => 0)
      if (status === 200) {
        accepted.set(key, targets.indexOf(target))
        acceptedAt.set(key, Date.now())
      }
      await sleep(everyMs)
    }
  })()
  return {
    accepted,
    acceptedAt,
    stop: async () => {
      running = false
      await done
    },
  }
}

/** `count` tidings processes meeting on `redis`, started (and disposed after the test). */
async function onRedis(redis: RedisServer, count: number): Promise<TidingsProcess[]> {
  const nodes = (await nodePorts(count)).map(
    (p: NodePorts) =>
      new TidingsProcess(p, {
        servers: [
          { type: 'client', port: p.client, listen: '127.0.0.1' },
          { type: 'admin', port: p.admin, listen: '127.0.0.1' },
        ],
        backplane: { type: 'redis', url: redis.url },
        drain: { window: 0 },
      })
  )
  for (const node of nodes) {
    later(() => node.dispose())
    await node.start()
  }
  return nodes
}

function counts(sub: Subscriber): Map<string, number> {
  const seen = new Map<string, number>()
  for (const frame of sub.frames)
    seen.set(String(frame.key), (seen.get(String(frame.key)) ?? 0) + 1)
  return seen
}

describe.skipIf(!redisAvailable())(
  'backplane: three processes on one Redis',
  { timeout: 120_000 },
  () => {
    it('delivers exactly once through a node killed under traffic and a Redis outage', async () => {
      const redis = await RedisServer.start()
      later(() => redis.dispose())
      const nodes = await onRedis(redis, 3)
      const subs = await Promise.all(nodes.map((node) => subscriber(node.clientUrl, ['P'])))
      for (const sub of subs) later(() => sub.client.close())
      // A message each way first: every node has subscribed before the traffic starts.
      for (const node of nodes) {
        expect(
          await postMessage(node.adminUrl, { key: `hello-${node.ports.admin}`, subscribers: ['P'] })
        ).toBe(200)
      }
      await eventually(
        () => subs.map((sub) => sub.frames.length),
        (lengths) => lengths.every((n) => n === 3)
      )

      const load = traffic(nodes, 20)
      await sleep(1000)
      await (nodes[2] as TidingsProcess).kill()
      await sleep(1000)
      await redis.kill()
      const outage = Date.now()
      await sleep(3000)
      const back = Date.now()
      await redis.restart()
      await sleep(1500)
      await load.stop()

      const [sub0, sub1] = subs as [Subscriber, Subscriber]
      const owed = [...load.accepted.keys()].filter((key) => load.accepted.get(key) !== 2)
      expect(owed.length).toBeGreaterThan(100)
      // Posts went on being taken while Redis was down (buffered, then published).
      const duringOutage = owed.filter((key) => {
        const at = load.acceptedAt.get(key) as number
        return at > outage && at < back
      })
      expect(duringOutage.length).toBeGreaterThan(20)
      // The two surviving nodes' clients get everything the surviving nodes took, once.
      await eventually(
        () => owed.filter((key) => !counts(sub0).has(key) || !counts(sub1).has(key)).length,
        (missing) => missing === 0,
        OWED_MS * 2
      )
      await sleep(500)
      for (const sub of [sub0, sub1]) {
        const seen = counts(sub)
        expect([...seen.values()].every((n) => n === 1)).toBe(true)
        expect(sub.frames.find((frame) => frame.key === owed[0])?.text).toBe(TEXT)
      }
      // What the killed node took before it died went out too, once; only its last moments
      // (accepted, not yet published) may be missing.
      const fromKilled = [...load.accepted.keys()].filter((key) => load.accepted.get(key) === 2)
      expect(fromKilled.length).toBeGreaterThan(0)
      const seen0 = counts(sub0)
      const missingFromKilled = fromKilled.filter((key) => !seen0.has(key))
      expect(missingFromKilled.length).toBeLessThanOrEqual(2)
    })

    it('replays what a browser missed after it moves to another node', async () => {
      const redis = await RedisServer.start()
      later(() => redis.dispose())
      const nodes = await onRedis(redis, 2)
      const [a, b] = nodes as [TidingsProcess, TidingsProcess]
      const browser = await subscriber(a.clientUrl, ['PHID-1'])
      await postMessage(a.adminUrl, { key: 'seen', subscribers: ['PHID-1'] })
      await eventually(
        () => browser.frames.length,
        (n) => n === 1
      )
      // Leave a while after it: a replay by age reaches back to when the browser left.
      await sleep(500)
      const left = Date.now()
      await browser.client.close()
      for (const key of ['missed-1', 'missed-2']) {
        expect(await postMessage(a.adminUrl, { key, text: TEXT, subscribers: ['PHID-1'] })).toBe(
          200
        )
      }
      // The browser comes back on the other node, as Phorge's client does, asking for what it
      // missed since it left.
      const moved = await subscriber(b.clientUrl, ['PHID-1'])
      later(() => moved.client.close())
      moved.client.send({ command: 'replay', data: { age: Date.now() - left } })
      await eventually(
        () => moved.frames.map((frame) => frame.key),
        (keys) => keys.length === 2
      )
      await sleep(300)
      expect(moved.frames.map((frame) => frame.key)).toEqual(['missed-1', 'missed-2'])
      expect(moved.frames[0]?.text).toBe(TEXT)
    })
  }
)
