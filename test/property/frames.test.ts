/**
 * Properties of the client-frame handler: no input makes it throw, and whatever a client
 * sends, the hub's index, the subscription limit and Object.prototype stay intact.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { handleFrame } from '../../src/client/frames.ts'
import { takeToken } from '../../src/client/token-bucket.ts'
import { parseConfig } from '../../src/config/parse.ts'
import type { Connection } from '../../src/hub/connection.ts'
import { outboundFromValue } from '../../src/hub/outbound.ts'
import { Tidings } from '../../src/tidings.ts'
import { FakeClock, FakeSocket, ManualScheduler, RecordingLogger } from '../helpers/fakes.ts'
import { PROPERTY_RUNS, SEED } from './seed.ts'

const LIMIT = 6

function setup(framesPerSecond = 0) {
  const clock = new FakeClock()
  const config = parseConfig({
    servers: [
      { type: 'client', port: 0 },
      { type: 'admin', port: 0 },
    ],
    limits: { subscriptionsPerConnection: LIMIT, framesPerSecond },
    history: { size: 8 },
  })
  const tidings = new Tidings({
    config,
    clock,
    logger: new RecordingLogger(true),
    scheduler: new ManualScheduler(),
  })
  const socket = new FakeSocket()
  const connection = tidings.hub.connect(socket, 'default')
  // Something to replay, so replay frames exercise the history too.
  tidings.hub.publish('default', ['a', '1'], outboundFromValue({ n: 1 }))
  return { clock, tidings, socket, connection }
}

/** The instance index holds `connection` under exactly the ids in its `subs`, and no empty sets. */
function checkIndex(connection: Connection): void {
  const { index } = connection.instance
  for (const [id, sockets] of index) {
    expect(sockets.size).toBeGreaterThan(0)
    expect(sockets.has(connection)).toBe(connection.subs.has(id))
  }
  for (const id of connection.subs) expect(index.get(id)?.has(connection)).toBe(true)
}

const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype).sort()

const id = fc.oneof(
  fc.constantFrom('a', 'b', 'c', '1', '__proto__', 'constructor', 'toString', ''),
  fc.string({ maxLength: 4 }),
  fc.integer({ min: -3, max: 3 }),
  fc.double()
)
const command = fc.oneof(
  fc.constantFrom('subscribe', 'unsubscribe', 'replay', 'ping'),
  fc.constantFrom('Subscribe', 'ping ', '__proto__', ''),
  fc.anything()
)
const data = fc.oneof(
  fc.array(id, { maxLength: 8 }),
  fc.record({ age: fc.oneof(fc.integer(), fc.double(), fc.anything()) }),
  fc.anything({ withObjectString: true, withNullPrototype: true }),
  fc.constant(null)
)
/** Frames shaped like the protocol, but with any values and keys. */
const structured = fc
  .record({ command, data, extra: fc.anything() }, { requiredKeys: [] })
  .map((frame) => JSON.stringify(frame) ?? 'null')
/** Valid frames with a few bytes flipped, cut or repeated. */
const mutated = fc
  .tuple(
    fc.constantFrom(
      '{"command":"subscribe","data":["a","b"]}',
      '{"command":"unsubscribe","data":["a"]}',
      '{"command":"replay","data":{"age":1000}}',
      '{"command":"ping","data":null}',
      '{"__proto__":{"command":"ping"},"command":"subscribe","data":["__proto__"]}'
    ),
    fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 })
  )
  .map(([text, edits]) => {
    let out: string = text
    for (const [at, code] of edits) {
      const i = at % (out.length + 1)
      out =
        code % 3 === 0
          ? out.slice(0, i)
          : code % 3 === 1
            ? out.slice(0, i) + String.fromCharCode(code) + out.slice(i)
            : out.slice(0, i) + out.slice(i + 1)
    }
    return out
  })
/** Anything at all: any UTF-16 string (lone surrogates too), or any bytes decoded as a binary frame is. */
const garbage = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => new TextDecoder().decode(bytes)),
  fc.jsonValue().map((value) => JSON.stringify(value))
)
const frame = fc.oneof(structured, mutated, garbage)

describe('handleFrame (properties)', () => {
  it('never throws, keeps the index consistent and the subscription limit, for any frames', () => {
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 30 }), (frames) => {
        const { tidings, socket, connection } = setup()
        for (const text of frames) {
          expect(() => handleFrame(tidings.frameContext, connection, text)).not.toThrow()
          checkIndex(connection)
          expect(connection.subs.size).toBeLessThanOrEqual(LIMIT)
          if (socket.closed) {
            expect(socket.closed).toEqual({ code: 1008, reason: 'subscription_limit' })
            expect(connection.open).toBe(false)
            expect(connection.subs.size).toBe(0)
          }
        }
        expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_KEYS)
        expect(({} as Record<string, unknown>).command).toBeUndefined()
        // Every message the socket got is one the server sends: a pong or a replayed message.
        for (const sent of socket.frames()) expect(sent.type === 'pong' || sent.n === 1).toBe(true)
      }),
      { seed: SEED, numRuns: PROPERTY_RUNS }
    )
  })

  it('answers every ping, whatever came before it, until the connection is closed', () => {
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 20 }), (frames) => {
        const { tidings, socket, connection } = setup()
        for (const text of frames) handleFrame(tidings.frameContext, connection, text)
        const before = socket.sent.length
        handleFrame(tidings.frameContext, connection, '{"command":"ping","data":null}')
        expect(socket.sent.length).toBe(connection.open ? before + 1 : before)
        expect(connection.open).toBe(socket.closed === undefined)
      }),
      { seed: SEED, numRuns: PROPERTY_RUNS }
    )
  })
})

describe('frame rate limit (properties)', () => {
  // Frame times: a start and gaps in ms, some of them zero (frames in one TCP chunk).
  const times = fc
    .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1500 })), { maxLength: 60 })
    .map((gaps) => {
      let t = 1_000_000
      return gaps.map((gap) => {
        t += gap
        return t
      })
    })
  const rate = fc.integer({ min: 1, max: 20 })

  it('never refuses a client that sends at most `rate` frames in any one-second window', () => {
    fc.assert(
      fc.property(rate, times, (perSecond, at) => {
        // Keep only frames that fit a sliding one-second window of `perSecond`.
        const kept: number[] = []
        for (const t of at) {
          const recent = kept.filter((k) => k > t - 1000).length
          if (recent < perSecond) kept.push(t)
        }
        const { connection } = setup()
        for (const t of kept) expect(takeToken(connection.frameBucket, t, perSecond)).toBe(true)
      }),
      { seed: SEED, numRuns: PROPERTY_RUNS }
    )
  })

  it('never accepts more than rate + rate * d / 1000 frames in any span of d ms', () => {
    fc.assert(
      fc.property(rate, times, (perSecond, at) => {
        const { connection } = setup()
        const accepted = at.filter((t) => takeToken(connection.frameBucket, t, perSecond))
        for (let i = 0; i < accepted.length; i++) {
          for (let j = i; j < accepted.length; j++) {
            const span = (accepted[j] as number) - (accepted[i] as number)
            expect(j - i + 1).toBeLessThanOrEqual(perSecond + (perSecond * span) / 1000 + 1e-6)
          }
        }
      }),
      { seed: SEED, numRuns: PROPERTY_RUNS }
    )
  })
})
