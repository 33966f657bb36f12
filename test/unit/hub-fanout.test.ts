import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CLOSE_SLOW_CONSUMER } from '../../src/close-codes.ts'
import type { Connection } from '../../src/hub/connection.ts'
import { outboundFromValue } from '../../src/hub/outbound.ts'
import type { Outbound } from '../../src/ports.ts'
import { FakeSocket, ManualScheduler, RecordingLogger, testHub } from '../helpers/fakes.ts'

const HISTORY = { size: 0, age: 60_000, bytes: 1024 }

function setup(fanoutSlice = 2048, slowConsumerBytes = 4 * 1024 * 1024) {
  const scheduler = new ManualScheduler()
  const logger = new RecordingLogger()
  const hub = testHub({
    logger,
    scheduler,
    limits: { subscriptionsPerConnection: 100, slowConsumerBytes, fanoutSlice },
    history: HISTORY,
  })
  const join = (ids: string[]) => {
    const socket = new FakeSocket()
    const connection = hub.connect(socket, 'default')
    hub.subscribe(connection, ids)
    return { socket, connection }
  }
  const keys = (socket: FakeSocket) => socket.frames().map((frame) => frame.key)
  return { hub, scheduler, logger, join, keys }
}

const message = (key: number): Outbound => outboundFromValue({ key })

describe('Hub fan-out', () => {
  it('hands every target the same Outbound object', () => {
    const { hub, join } = setup()
    const clients = Array.from({ length: 5 }, () => join(['A']))
    const outbound = message(1)
    expect(hub.publish('default', ['A'], outbound)).toBe(5)
    for (const { socket } of clients) expect(socket.sent).toEqual([outbound])
    expect(clients.every(({ socket }) => socket.sent[0] === outbound)).toBe(true)
  })

  it('delivers small fan-outs at once and slices large ones, one slice per turn', () => {
    const { hub, scheduler, join } = setup(4)
    const clients = Array.from({ length: 10 }, () => join(['A']))
    hub.publish('default', ['A'], message(1))
    expect(clients.filter(({ socket }) => socket.sent.length > 0)).toHaveLength(0)
    expect(hub.backlog).toBe(10)
    scheduler.tasks.shift()?.()
    expect(clients.filter(({ socket }) => socket.sent.length > 0)).toHaveLength(4)
    expect(hub.backlog).toBe(6)
    scheduler.runAll()
    expect(clients.every(({ socket }) => socket.sent.length === 1)).toBe(true)
    expect(hub.backlog).toBe(0)
    expect(hub.stats.deliveries).toBe(10)
  })

  it('merges same-target publishes of one turn: each slice gets all of them, in order', () => {
    const { hub, scheduler, join, keys } = setup(4)
    const clients = Array.from({ length: 10 }, () => join(['A', 'B']))
    for (let key = 1; key <= 5; key++) hub.publish('default', ['A'], message(key))
    let turns = 0
    while (scheduler.tasks.length > 0) {
      scheduler.tasks.shift()?.()
      turns++
    }
    // ceil(10 / 4) turns for all five messages, not five times that.
    expect(turns).toBe(3)
    for (const { socket } of clients) expect(keys(socket)).toEqual([1, 2, 3, 4, 5])
    expect(hub.stats.deliveries).toBe(50)
  })

  it('does not merge across a change of the index', () => {
    const { hub, scheduler, join, keys } = setup(2)
    const early = Array.from({ length: 3 }, () => join(['A']))
    hub.publish('default', ['A'], message(1))
    const late = join(['A'])
    hub.publish('default', ['A'], message(2))
    scheduler.runAll()
    for (const { socket } of early) expect(keys(socket)).toEqual([1, 2])
    expect(keys(late.socket)).toEqual([2])
  })

  it('sees subscribes, unsubscribes and disconnects between publishes of the same ids', () => {
    const { hub, join, keys } = setup()
    const a = join(['A'])
    const b = join(['A'])
    hub.publish('default', ['A'], message(1))
    const c = join(['A'])
    hub.publish('default', ['A'], message(2))
    hub.unsubscribe(a.connection, ['A'])
    hub.publish('default', ['A'], message(3))
    hub.disconnect(b.connection)
    hub.publish('default', ['A'], message(4))
    expect(keys(a.socket)).toEqual([1, 2])
    expect(keys(b.socket)).toEqual([1, 2, 3])
    expect(keys(c.socket)).toEqual([2, 3, 4])
  })

  it('closes a slow consumer with 4008, counts it and keeps serving the others', () => {
    const { hub, logger, join, keys } = setup(2048, 1024)
    const slow = join(['A'])
    const fine = join(['A'])
    slow.socket.pending = 1025
    hub.publish('default', ['A'], message(1))
    expect(slow.socket.closed).toEqual({ code: CLOSE_SLOW_CONSUMER, reason: 'slow_consumer' })
    expect(slow.socket.sent).toEqual([])
    expect(hub.stats.slowConsumerCloses).toBe(1)
    expect(slow.connection.open).toBe(false)
    expect(logger.lines.some((line) => line.includes('limits.slowConsumerBytes'))).toBe(true)
    hub.publish('default', ['A'], message(2))
    expect(keys(fine.socket)).toEqual([1, 2])
    expect(hub.stats.slowConsumerCloses).toBe(1)
  })

  it('closes a slow consumer found in the middle of a merged, sliced job', () => {
    const { hub, scheduler, join, keys } = setup(2, 1024)
    const clients = Array.from({ length: 5 }, () => join(['A']))
    hub.publish('default', ['A'], message(1))
    hub.publish('default', ['A'], message(2))
    ;(clients[3] as { socket: FakeSocket }).socket.pending = 5000
    scheduler.runAll()
    expect(clients.map(({ socket }) => keys(socket))).toEqual([[1, 2], [1, 2], [1, 2], [], [1, 2]])
    expect(clients[3]?.socket.closed?.code).toBe(CLOSE_SLOW_CONSUMER)
    expect(hub.stats.deliveries).toBe(8)
  })

  it('keeps each socket in publish order across sliced fan-outs, whatever interleaves', () => {
    const ids = ['a', 'b', 'c']
    const op = fc.oneof(
      fc.record({ op: fc.constant('publish' as const), ids: fc.subarray(ids, { minLength: 1 }) }),
      fc.record({
        op: fc.constantFrom('subscribe' as const, 'unsubscribe' as const),
        socket: fc.nat(7),
        ids: fc.subarray(ids, { minLength: 1 }),
      }),
      fc.record({ op: fc.constant('disconnect' as const), socket: fc.nat(7) }),
      fc.record({ op: fc.constant('turn' as const) })
    )
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 60 }), (slice, ops) => {
        const { hub, scheduler, join, keys } = setup(slice)
        const clients = Array.from({ length: 8 }, (_, i) => join([ids[i % 3] as string]))
        const expected: number[][] = clients.map(() => [])
        let key = 0
        for (const step of ops) {
          if (step.op === 'publish') {
            key++
            clients.forEach(({ connection }, i) => {
              if (connection.open && step.ids.some((id) => connection.subs.has(id))) {
                expected[i]?.push(key)
              }
            })
            hub.publish('default', step.ids, message(key))
          } else if (step.op === 'turn') {
            scheduler.tasks.shift()?.()
          } else {
            const { connection } = clients[step.socket] as { connection: Connection }
            if (step.op === 'subscribe') hub.subscribe(connection, step.ids)
            else if (step.op === 'unsubscribe') hub.unsubscribe(connection, step.ids)
            else hub.disconnect(connection)
          }
        }
        scheduler.runAll()
        let total = 0
        clients.forEach(({ socket, connection }, i) => {
          const got = keys(socket) as number[]
          total += got.length
          const want = expected[i] as number[]
          // A socket that left gets a prefix of its messages; an open one gets them all.
          if (connection.open) expect(got).toEqual(want)
          else expect(got).toEqual(want.slice(0, got.length))
        })
        expect(hub.stats.deliveries).toBe(total)
        expect(hub.backlog).toBe(0)
      }),
      { numRuns: 300 }
    )
  })

  it('forgets a stale target list on sweep, so closed sockets are not kept reachable', () => {
    const { hub, join } = setup()
    const a = join(['A'])
    join(['A'])
    hub.publish('default', ['A'], message(1))
    const instance = hub.find('default')
    expect(instance?.lastTargets?.targets).toHaveLength(2)
    hub.disconnect(a.connection)
    hub.sweep()
    expect(instance?.lastTargets).toBeUndefined()
  })
})
