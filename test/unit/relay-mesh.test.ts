/**
 * Whole nodes (Tidings + Relay + admin app) wired by an in-memory network: exactly-once
 * delivery in any topology, with Aphlict-rule nodes mixed in.
 */
import fc from 'fast-check'
import type { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/parse.ts'
import { createNode } from '../../src/node/node.ts'
import type { PeerAddress, PeerReply, PeerTransport } from '../../src/ports.ts'
import type { Relay } from '../../src/relay/relay.ts'
import type { Tidings } from '../../src/tidings.ts'
import { AphlictRules } from '../helpers/cluster-aphlict.ts'
import { LogLines, microScheduler, RecordingSocket } from '../helpers/cluster-fakes.ts'

type Handler = (instance: string, body: Uint8Array) => Promise<PeerReply>

/** Routes relays by origin to in-process nodes; an unknown or stopped origin refuses. */
class Network implements PeerTransport {
  readonly handlers = new Map<string, Handler>()
  async post(peer: PeerAddress, instance: string, body: Uint8Array): Promise<PeerReply> {
    await new Promise((resolve) => setTimeout(resolve, 0))
    const handler = this.handlers.get(peer.origin)
    if (!handler) throw new Error('connect ECONNREFUSED')
    return handler(instance, body)
  }
}

const origin = (index: number): string => `http://node${index}:22281`

interface SimTidings {
  kind: 'tidings'
  tidings: Tidings
  /** Undefined for a node with no cluster peers (it relays nothing). */
  relay: Relay | undefined
  app: Hono
  socket: RecordingSocket
}
interface AphlictNode {
  kind: 'aphlict'
  rules: AphlictRules
}
type SimNode = SimTidings | AphlictNode

function tidingsNode(index: number, peers: number[], network: Network): SimTidings {
  const node = createNode({
    config: parseConfig({
      servers: [
        { type: 'client', port: 0 },
        { type: 'admin', port: 0 },
      ],
      cluster: peers.map((peer) => ({ host: `node${peer}`, port: 22281, protocol: 'http' })),
    }),
    clock: { now: () => Date.now() },
    logger: new LogLines(),
    scheduler: microScheduler,
    transport: network,
  })
  const { tidings, admin: app } = node
  const { relay } = node
  const socket = new RecordingSocket()
  const connection = tidings.hub.connect(socket, 'default')
  tidings.hub.subscribe(connection, ['P'])
  network.handlers.set(origin(index), async (instance, body) => {
    const response = await app.request(`/?instance=${encodeURIComponent(instance)}`, {
      method: 'POST',
      body: new Uint8Array(body),
      headers: { 'content-type': 'application/json' },
    })
    return { status: response.status, body: await response.text() }
  })
  return { kind: 'tidings', tidings, relay, app, socket }
}

function aphlictNode(index: number, peers: number[], network: Network): AphlictNode {
  const rules = new AphlictRules(
    `APHLICT${index}fingerp`.slice(0, 16),
    peers.map(origin),
    async (to, instance, text) => {
      try {
        const reply = await network.post({ origin: to }, instance, new TextEncoder().encode(text))
        return reply.body
      } catch {
        return undefined
      }
    }
  )
  network.handlers.set(origin(index), async (instance, body) => {
    await new Promise((resolve) => setTimeout(resolve, 0))
    const [status, text] = rules.receive(instance, new TextDecoder().decode(body))
    return { status, body: text }
  })
  return { kind: 'aphlict', rules }
}

async function quiesce(nodes: SimNode[]): Promise<void> {
  let quiet = 0
  for (let turn = 0; turn < 5000 && quiet < 5; turn++) {
    await new Promise((resolve) => setTimeout(resolve, 0))
    const busy = nodes.some(
      (node) =>
        node.kind === 'tidings' &&
        (node.relay?.status() ?? []).some((peer) => peer.queue > 0 || peer.inFlight > 0)
    )
    quiet = busy ? 0 : quiet + 1
  }
}

function reachable(lists: number[][], from: number): Set<number> {
  const seen = new Set([from])
  const stack = [from]
  while (stack.length > 0) {
    const node = stack.pop() as number
    for (const next of lists[node] ?? []) {
      if (!seen.has(next)) {
        seen.add(next)
        stack.push(next)
      }
    }
  }
  return seen
}

/** POSTs `message` to node `index`'s admin app, as Phorge would. */
async function postTo(index: number, network: Network, message: object) {
  const handler = network.handlers.get(origin(index)) as Handler
  const reply = await handler('default', new TextEncoder().encode(JSON.stringify(message)))
  expect(reply.status).toBe(200)
}

/** How many times each tidings node's client got the message with key `key`. */
function copies(node: SimTidings, key: string): number {
  return node.socket.frames().filter((frame) => frame.key === key).length
}

describe('relay across whole nodes', () => {
  it('delivers exactly once on every node of full meshes of 2 to 6 nodes, each listing all including itself', async () => {
    for (let n = 2; n <= 6; n++) {
      const network = new Network()
      const all = Array.from({ length: n }, (_, i) => i)
      const nodes = all.map((i) => tidingsNode(i, all, network))
      for (let m = 0; m < 6; m++) {
        const message = {
          key: `m${m}`,
          text: 'Grüße, 世界 🚀',
          subscribers: ['P'],
          ...(m % 2 === 0 ? { uniqueID: `u-${n}-${m}` } : {}),
        }
        await postTo(m % n, network, message)
      }
      await quiesce(nodes)
      for (const node of nodes) {
        const frames = node.socket.frames()
        expect(frames.map((f) => f.key).sort()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5'])
        expect(frames.every((f) => f.text === 'Grüße, 世界 🚀')).toBe(true)
        expect(frames.every((f) => typeof f.uniqueID === 'string')).toBe(true)
      }
      // After the first messages every node knows itself and its peers.
      for (const node of nodes) {
        expect(node.relay?.status().filter((peer) => peer.state === 'self')).toHaveLength(1)
      }
    }
  })

  it('delivers exactly once on every reachable node, and nowhere else, in any topology (property)', async () => {
    const topology = fc.integer({ min: 2, max: 6 }).chain((n) =>
      fc.record({
        n: fc.constant(n),
        lists: fc.array(fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i)), {
          minLength: n,
          maxLength: n,
        }),
        aphlict: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
        messages: fc.array(fc.record({ from: fc.nat({ max: n - 1 }), unique: fc.boolean() }), {
          minLength: 1,
          maxLength: 4,
        }),
        concurrent: fc.boolean(),
      })
    )
    await fc.assert(
      fc.asyncProperty(topology, async ({ lists, aphlict, messages, concurrent }) => {
        const network = new Network()
        // Messages start at tidings nodes (an Aphlict origin adds no identity to dedup on).
        const origins = new Set(messages.map((m) => m.from))
        const nodes: SimNode[] = lists.map((peers, i) =>
          aphlict[i] && !origins.has(i)
            ? aphlictNode(i, peers, network)
            : tidingsNode(i, peers, network)
        )
        const posts = messages.map(
          (m, k) => () =>
            postTo(m.from, network, {
              key: `k${k}`,
              subscribers: ['P'],
              ...(m.unique ? { uniqueID: `unique-${k}` } : {}),
            })
        )
        if (concurrent) await Promise.all(posts.map((post) => post()))
        else for (const post of posts) await post()
        await quiesce(nodes)
        messages.forEach((m, k) => {
          const expected = reachable(lists, m.from)
          nodes.forEach((node, i) => {
            if (node.kind !== 'tidings') return
            expect(copies(node, `k${k}`)).toBe(expected.has(i) ? 1 : 0)
          })
        })
      }),
      { numRuns: 60 }
    )
  })

  it('interoperates with Aphlict-rule nodes: relays they send are accepted, ours are accepted by them', async () => {
    const network = new Network()
    const all = [0, 1, 2]
    const a = tidingsNode(0, all, network)
    const b = tidingsNode(1, all, network)
    const c = aphlictNode(2, all, network)
    await postTo(0, network, { key: 'from-a', subscribers: ['P'], uniqueID: 'ua' })
    await quiesce([a, b, c])
    await postTo(2, network, { key: 'from-c', subscribers: ['P'], uniqueID: 'uc' })
    await quiesce([a, b, c])
    for (const node of [a, b]) {
      expect(copies(node, 'from-a')).toBe(1)
      expect(copies(node, 'from-c')).toBe(1)
    }
    // The Aphlict node got both (it has no dedup of its own, so it may show more copies).
    const keys = c.rules.delivered.map((d) => JSON.parse(d.text).key)
    expect(keys).toContain('from-a')
    expect(keys).toContain('from-c')
    // Our receipts taught it our fingerprints, and its receipts taught us its fingerprint.
    expect(c.rules.peers.map((p) => p.fingerprint)).toEqual([
      a.tidings.fingerprint,
      b.tidings.fingerprint,
      c.rules.fingerprint,
    ])
    expect(a.relay?.status()[2]?.fingerprint).toBe(c.rules.fingerprint)
  })
})
