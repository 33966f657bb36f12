/**
 * Real tidings processes in a full mesh on loopback (each lists every admin port, itself
 * included), one WebSocket client per node: exactly-once delivery, a node killed with -9
 * under traffic, and its restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  meshConfig,
  nodePorts,
  peersOf,
  postMessage,
  type Subscriber,
  subscriber,
  TidingsProcess,
} from '../helpers/cluster.ts'
import { eventually } from '../helpers/ws-client.ts'

const NODES = 4
const RELAY = {
  timeout: 2000,
  connectTimeout: 1000,
  failures: 2,
  retryBase: 50,
  retryMax: 400,
  maxAge: 5000,
  dedupAge: 60_000,
}
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms))
const TEXT = 'Grüße, 世界 🚀 \u2028 "quoted"'

/** Every key in `keys` arrived exactly once, and nothing else arrived twice. */
function expectExactlyOnce(sub: Subscriber, keys: string[]): void {
  const seen = new Map<string, number>()
  for (const frame of sub.frames)
    seen.set(String(frame.key), (seen.get(String(frame.key)) ?? 0) + 1)
  for (const key of keys) expect(seen.get(key), `copies of ${key}`).toBe(1)
  for (const [key, copies] of seen) expect(copies, `copies of ${key}`).toBe(1)
}

// The same mesh of one-process nodes, and of nodes each served by a primary and two workers.
describe.each([1, 2])(
  'a full mesh of tidings processes (processes: %i)',
  { timeout: 60_000 },
  (processes) => {
    const nodes: TidingsProcess[] = []
    const subs: Subscriber[] = []
    let sent = 0
    const message = (withUniqueId: boolean) => {
      const key = `m${++sent}`
      return {
        key,
        body: {
          key,
          type: 'notification',
          text: TEXT,
          subscribers: ['PHID-USER-cluster'],
          ...(withUniqueId ? { uniqueID: `unique-${process.pid}-${key}` } : {}),
        },
      }
    }

    beforeAll(async () => {
      const ports = await nodePorts(NODES)
      for (const self of ports)
        nodes.push(new TidingsProcess(self, meshConfig(self, ports, { relay: RELAY, processes })))
      await Promise.all(nodes.map((node) => node.start()))
      for (const node of nodes) subs.push(await subscriber(node.clientUrl, ['PHID-USER-cluster']))
    }, 40_000)

    afterAll(async () => {
      await Promise.all(subs.map((sub) => sub.client.close()))
      await Promise.all(nodes.map((node) => node.dispose()))
    })

    it('gives every client every message exactly once from the first message on, non-ASCII included', async () => {
      const keys: string[] = []
      for (let batch = 0; batch < 5; batch++) {
        await Promise.all(
          nodes.map((node, i) => {
            const { key, body } = message((batch + i) % 2 === 0)
            keys.push(key)
            return postMessage(node.adminUrl, body).then((status) => expect(status).toBe(200))
          })
        )
      }
      await eventually(
        () => subs.map((sub) => sub.frames.length),
        (counts) => counts.every((count) => count >= keys.length),
        10_000
      )
      await sleep(300) // any late duplicate would land now
      for (const sub of subs) {
        expectExactlyOnce(sub, keys)
        expect(sub.frames.every((frame) => frame.text === TEXT)).toBe(true)
        // Every copy carries one uniqueID (posted, or drawn at random by the first node).
        expect(sub.frames.every((frame) => typeof frame.uniqueID === 'string')).toBe(true)
      }
    })

    it('recognises itself in its own cluster list and learns every other fingerprint', async () => {
      for (const node of nodes) {
        const peers = await peersOf(node.adminUrl)
        expect(peers.map((peer) => peer.state)).toEqual(
          nodes.map((other) => (other === node ? 'self' : 'up'))
        )
        expect(peers.filter((p) => p.state !== 'self').map((p) => p.fingerprint)).toEqual(
          nodes.filter((other) => other !== node).map((other) => other.fingerprint)
        )
      }
    })

    it('keeps delivering exactly once, with POSTs answered at once, when a node is killed -9 under traffic', async () => {
      const victim = nodes[3] as TidingsProcess
      const survivors = nodes.slice(0, 3)
      const keys: string[] = []
      const traffic = async (count: number) => {
        for (let i = 0; i < count; i++) {
          const node = survivors[i % survivors.length] as TidingsProcess
          const { key, body } = message(i % 3 !== 0)
          keys.push(key)
          // Far below relay.timeout: a POST never waits for a relay to a dead peer.
          expect(await postMessage(node.adminUrl, body, { timeoutMs: 1500 })).toBe(200)
        }
      }
      await traffic(15)
      await Promise.all([traffic(30), victim.kill()])
      await traffic(15)
      await eventually(
        () => survivors.map((_, i) => subs[i]?.frames.length ?? 0),
        () => survivors.every((_, i) => keys.every((key) => (subs[i]?.count(key) ?? 0) >= 1)),
        10_000
      )
      await sleep(300) // any late duplicate would land now
      for (let i = 0; i < survivors.length; i++) {
        const sub = subs[i] as Subscriber
        for (const key of keys) expect(sub.count(key), `node ${i} copies of ${key}`).toBe(1)
      }
      const peers = await eventually(
        () => peersOf((survivors[0] as TidingsProcess).adminUrl),
        (list) => ['down', 'probing'].includes(list[3]?.state ?? '')
      )
      expect(peers[3]?.lastError).toMatch(/ECONNREFUSED|socket|closed|terminated/i)
    })

    it('rejoins after a restart: the new fingerprint is learned and its client gets each message once', async () => {
      const victim = nodes[3] as TidingsProcess
      const oldFingerprint = victim.fingerprint
      const newFingerprint = await victim.start()
      expect(newFingerprint).not.toBe(oldFingerprint)
      await subs[3]?.client.close()
      const fresh = await subscriber(victim.clientUrl, ['PHID-USER-cluster'])
      subs[3] = fresh
      const keys: string[] = []
      // Messages go to the surviving nodes only: the restarted one must get them by relay.
      await eventually(
        async () => {
          const { key, body } = message(true)
          keys.push(key)
          await postMessage((nodes[keys.length % 3] as TidingsProcess).adminUrl, body)
          return fresh.frames.length
        },
        (count) => count > 0,
        10_000
      )
      for (let i = 0; i < 10; i++) {
        const { key, body } = message(i % 2 === 0)
        keys.push(key)
        await postMessage((nodes[i % 3] as TidingsProcess).adminUrl, body)
      }
      const tail = keys.slice(-10)
      await eventually(
        () => fresh.frames.length,
        () => tail.every((key) => fresh.count(key) === 1),
        10_000
      )
      await sleep(300)
      for (const frame of fresh.frames) expect(fresh.count(String(frame.key))).toBe(1)
      for (const sub of subs.slice(0, 3)) for (const key of keys) expect(sub.count(key)).toBe(1)
      for (const node of nodes.slice(0, 3)) {
        const peers = await eventually(
          () => peersOf(node.adminUrl),
          (list) => list[3]?.fingerprint === newFingerprint && list[3]?.state === 'up'
        )
        expect(peers[3]?.fingerprint).toBe(newFingerprint)
        expect(node.output.join('\n')).toContain(
          `restarted (or several servers answer at that address): fingerprint "${oldFingerprint}" is now "${newFingerprint}"`
        )
      }
    })
  }
)
