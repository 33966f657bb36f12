/**
 * A model-based property of the hub: any sequence of connects, (un)subscribes, publishes,
 * stalls, disconnects and scheduler turns leaves the subscription index equal to a simple
 * model, and every socket receives exactly the messages the model says, once, in order.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Connection } from '../../src/hub/connection.ts'
import { outboundFromValue } from '../../src/hub/outbound.ts'
import { FakeSocket, ManualScheduler, testHub } from '../helpers/fakes.ts'
import { PROPERTY_RUNS, SEED } from './seed.ts'

const IDS = ['a', 'b', 'c', 'd', '1', '__proto__']
const INSTANCES = ['i1', 'i2']
const LIMIT = 4
const SLICE = 2
const CAP = 1024

type Op =
  | { op: 'connect'; instance: number }
  | { op: 'subscribe' | 'unsubscribe'; conn: number; ids: string[] }
  | { op: 'publish'; instance: number; ids: string[] }
  | { op: 'disconnect' | 'stall'; conn: number }
  | { op: 'turn' }

const ids = fc.subarray(IDS, { maxLength: 5 }).chain((picked) => fc.shuffledSubarray(picked))
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('connect' as const), instance: fc.nat(1) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constantFrom('subscribe' as const, 'unsubscribe' as const),
      conn: fc.nat(),
      ids,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('publish' as const), instance: fc.nat(1), ids }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('disconnect' as const), conn: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('stall' as const), conn: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('turn' as const) }) }
)

interface ModelConn {
  connection: Connection
  socket: FakeSocket
  instance: string
  open: boolean
  subs: Set<string>
  /** Message numbers this socket must have received, in order. */
  expected: number[]
}

describe('hub index and fan-out (model-based property)', () => {
  it('matches the model for any sequence of operations', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 5, maxLength: 80, size: 'medium' }), (ops) => {
        const scheduler = new ManualScheduler()
        const hub = testHub({
          scheduler,
          limits: { subscriptionsPerConnection: LIMIT, slowConsumerBytes: CAP, fanoutSlice: SLICE },
          history: { size: 16, age: 60_000, bytes: 1 << 20 },
        })
        const conns: ModelConn[] = []
        /** Published but not yet delivered: the message and the targets chosen at publish time. */
        let pending: { n: number; targets: ModelConn[] }[] = []
        let published = 0

        const deliver = (n: number, targets: ModelConn[]): void => {
          for (const target of targets) {
            if (!target.open) continue
            if (target.socket.pending > CAP) {
              target.open = false
              target.subs.clear()
              continue
            }
            target.expected.push(n)
          }
        }
        const check = (): void => {
          for (const name of INSTANCES) {
            const instance = hub.find(name)
            const open = conns.filter((c) => c.open && c.instance === name)
            expect(new Set(instance?.connections ?? [])).toEqual(
              new Set(open.map((c) => c.connection))
            )
            const model = new Map<string, Set<Connection>>()
            for (const c of open) {
              for (const id of c.subs) {
                if (!model.has(id)) model.set(id, new Set())
                model.get(id)?.add(c.connection)
              }
            }
            expect(new Map(instance?.index ?? [])).toEqual(model)
          }
          for (const c of conns) {
            expect(c.connection.open).toBe(c.open)
            expect(new Set(c.connection.subs)).toEqual(c.subs)
            expect(c.socket.sent.map((m) => (JSON.parse(m.text) as { n: number }).n)).toEqual(
              c.expected
            )
            if (!c.open && c.socket.closed) {
              expect(c.socket.closed).toEqual({ code: 4008, reason: 'slow_consumer' })
            }
          }
        }

        for (const step of ops) {
          switch (step.op) {
            case 'connect': {
              if (conns.length >= 8) break
              const socket = new FakeSocket()
              const instance = INSTANCES[step.instance] as string
              const connection = hub.connect(socket, instance)
              conns.push({
                connection,
                socket,
                instance,
                open: true,
                subs: new Set(),
                expected: [],
              })
              break
            }
            case 'subscribe': {
              const c = conns[step.conn % Math.max(1, conns.length)]
              if (!c) break
              const ok = hub.subscribe(c.connection, step.ids) === undefined
              const union = new Set([...c.subs, ...step.ids])
              if (!c.open) {
                expect(ok).toBe(true)
              } else if (union.size > LIMIT) {
                expect(ok).toBe(false)
              } else {
                expect(ok).toBe(true)
                c.subs = union
              }
              break
            }
            case 'unsubscribe': {
              const c = conns[step.conn % Math.max(1, conns.length)]
              if (!c) break
              hub.unsubscribe(c.connection, step.ids)
              for (const id of step.ids) c.subs.delete(id)
              break
            }
            case 'disconnect': {
              const c = conns[step.conn % Math.max(1, conns.length)]
              if (!c) break
              hub.disconnect(c.connection)
              c.open = false
              c.subs.clear()
              break
            }
            case 'stall': {
              const c = conns[step.conn % Math.max(1, conns.length)]
              if (c) c.socket.pending = CAP + 1
              break
            }
            case 'publish': {
              const n = ++published
              const instance = INSTANCES[step.instance] as string
              const targets = conns.filter(
                (c) => c.open && c.instance === instance && step.ids.some((id) => c.subs.has(id))
              )
              const count = hub.publish(instance, step.ids, outboundFromValue({ n }))
              expect(count).toBe(targets.length)
              if (targets.length === 0) break
              if (pending.length === 0 && targets.length <= SLICE) deliver(n, targets)
              else pending.push({ n, targets })
              break
            }
            case 'turn': {
              scheduler.runAll()
              for (const { n, targets } of pending) deliver(n, targets)
              pending = []
              break
            }
          }
          if (pending.length === 0) check()
        }
        scheduler.runAll()
        for (const { n, targets } of pending) deliver(n, targets)
        check()
      }),
      { seed: SEED, numRuns: PROPERTY_RUNS }
    )
  })
})
