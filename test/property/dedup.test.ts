/**
 * Properties of duplicate suppression: the dedup cache against a model, and a cluster of
 * Tidings nodes whose relayed copies are delivered any number of times, in any order, to
 * any node. Each node's client gets every message that reached that node exactly once:
 * a first copy is never dropped, a second copy never passes.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseMessage } from '../../src/admin/body.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { DedupCache } from '../../src/relay/dedup.ts'
import { Tidings } from '../../src/tidings.ts'
import { FakeClock, FakeSocket, ManualScheduler, RecordingLogger } from '../helpers/fakes.ts'
import { PROPERTY_RUNS, SEED } from './seed.ts'

const AGE = 1000

describe('DedupCache (properties)', () => {
  it('passes an identity iff it was not passed within the age, while it has room', () => {
    const adds = fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.nat(2 * AGE)), {
      maxLength: 60,
    })
    fc.assert(
      fc.property(adds, (steps) => {
        const cache = new DedupCache({ size: 4, age: AGE })
        const passedAt = new Map<string, number>()
        let now = 0
        for (const [id, gap] of steps) {
          now += gap
          const last = passedAt.get(id)
          const expected = last === undefined || last <= now - AGE
          expect(cache.add(id, now)).toBe(expected)
          if (expected) passedAt.set(id, now)
        }
        expect(cache.evicted).toBe(0)
      }),
      { seed: SEED, numRuns: PROPERTY_RUNS }
    )
  })

  it('never drops a first copy, however small it is', () => {
    fc.assert(
      fc.property(
        fc.nat(5),
        fc.array(fc.tuple(fc.string({ maxLength: 3 }), fc.nat(2 * AGE)), { maxLength: 60 }),
        (size, steps) => {
          const cache = new DedupCache({ size, age: AGE })
          const seen = new Set<string>()
          let now = 0
          for (const [id, gap] of steps) {
            now += gap
            const passed = cache.add(id, now)
            if (!seen.has(id)) expect(passed).toBe(true)
            seen.add(id)
          }
        }
      ),
      { seed: SEED, numRuns: PROPERTY_RUNS }
    )
  })
})

interface Relayed {
  from: number
  body: Uint8Array
}

type Step =
  | { kind: 'post'; node: number; message: number }
  | { kind: 'relay'; pick: number; to: number }

/** Logical messages: with a usable uniqueID (Phorge's), none, or an unusable one (refused). */
const UNIQUE_IDS: unknown[] = ['U0', 'U1', 'U2', undefined, undefined, '', 7, null, 'x'.repeat(300)]
const hasUsableId = (m: number): boolean => m === 0 || m === 1 || m === 2 || m === 6
const isRefused = (m: number): boolean => m === 5 || m === 8

describe('cluster delivery (property)', () => {
  it('delivers each message once per node, whatever copies arrive in whatever order', () => {
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({
        kind: fc.constant('post' as const),
        node: fc.nat(2),
        message: fc.nat(UNIQUE_IDS.length - 1),
      }),
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('relay' as const),
          pick: fc.nat(),
          to: fc.nat(2),
        }),
      }
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 50 }), (steps) => {
        const clock = new FakeClock()
        const config = parseConfig({
          servers: [
            { type: 'client', port: 0 },
            { type: 'admin', port: 0 },
          ],
        })
        const outbox: Relayed[] = []
        const nodes = [0, 1, 2].map((index) => {
          const tidings = new Tidings({
            config,
            clock,
            logger: new RecordingLogger(),
            scheduler: new ManualScheduler(),
            fingerprint: `fp${index}`,
            dedup: { size: 1000, age: 120_000 },
          })
          tidings.forwarders.push({
            forward({ body }) {
              outbox.push({ from: index, body })
            },
          })
          const socket = new FakeSocket()
          tidings.hub.subscribe(tidings.hub.connect(socket, 'default'), ['P'])
          return { tidings, socket, shouldHave: new Set<number>() }
        })
        const posted = new Set<number>()
        const ingest = (to: number, body: Uint8Array): void => {
          const node = nodes[to]
          if (!node) return
          const message = parseMessage(body)
          const m = message.value.m as number
          if (!message.touched.includes(`fp${to}`)) node.shouldHave.add(m)
          node.tidings.ingest('default', message)
        }
        for (const s of steps) {
          if (s.kind === 'post') {
            // Phorge may post a message again only when it carries a uniqueID (a retry);
            // without one, a second post is a different message as far as anyone can tell.
            if (posted.has(s.message) && !hasUsableId(s.message)) continue
            const value: Record<string, unknown> = { m: s.message, subscribers: ['P'] }
            if (UNIQUE_IDS[s.message] !== undefined) value.uniqueID = UNIQUE_IDS[s.message]
            const body = new TextEncoder().encode(JSON.stringify(value))
            if (isRefused(s.message)) {
              expect(() => parseMessage(body)).toThrow(/uniqueID/)
              continue
            }
            posted.add(s.message)
            ingest(s.node, body)
          } else if (outbox.length > 0) {
            const copy = outbox[s.pick % outbox.length] as Relayed
            if (s.to !== copy.from) ingest(s.to, copy.body)
          }
        }
        for (const node of nodes) {
          const received = node.socket.frames().map((frame) => frame.m as number)
          expect(new Set(received).size).toBe(received.length)
          expect(new Set(received)).toEqual(node.shouldHave)
          // One identity per message everywhere: the posted uniqueID, or one drawn by its entry node.
          for (const frame of node.socket.frames()) {
            expect(['string', 'number']).toContain(typeof frame.uniqueID)
          }
        }
      }),
      { seed: SEED, numRuns: PROPERTY_RUNS }
    )
  })
})
