import { describe, expect, it } from 'vitest'
import { handleFrame } from '../../src/client/frames.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { outboundFromValue } from '../../src/hub/outbound.ts'
import { Tidings } from '../../src/tidings.ts'
import { utf8Length } from '../../src/util/utf8.ts'
import { FakeClock, FakeSocket, ManualScheduler, RecordingLogger } from '../helpers/fakes.ts'

function setup(limits: Record<string, number> = {}) {
  const clock = new FakeClock()
  const config = parseConfig({
    servers: [
      { type: 'client', port: 0 },
      { type: 'admin', port: 0 },
    ],
    limits,
  })
  const scheduler = new ManualScheduler()
  const tidings = new Tidings({ config, clock, logger: new RecordingLogger(), scheduler })
  const socket = new FakeSocket()
  const connection = tidings.hub.connect(socket, 'default')
  const send = (frame: unknown) =>
    handleFrame(
      tidings.frameContext,
      connection,
      typeof frame === 'string' ? frame : JSON.stringify(frame)
    )
  return { clock, tidings, socket, connection, send, scheduler }
}

describe('handleFrame', () => {
  it('answers ping with one shared pong', () => {
    const { socket, send } = setup()
    send({ command: 'ping', data: null })
    send({ command: 'ping' })
    expect(socket.frames()).toEqual([{ type: 'pong' }, { type: 'pong' }])
    expect(socket.sent[0]).toBe(socket.sent[1])
  })

  it('subscribes to string and numeric ids as strings', () => {
    const { connection, send } = setup()
    send({ command: 'subscribe', data: ['PHID-A', 7] })
    expect([...connection.subs]).toEqual(['PHID-A', '7'])
  })

  it('counts and ignores malformed frames without throwing', () => {
    const { tidings, connection, send } = setup()
    for (const frame of [
      'null',
      '{',
      '[]',
      '{"command":"subscribe"}',
      '{"command":"subscribe","data":"PQ"}',
      '{"command":"x"}',
    ]) {
      expect(() => send(frame)).not.toThrow()
    }
    expect(connection.subs.size).toBe(0)
    expect(tidings.rejected.badFrames).toBe(6)
  })

  it('replays with age 0 or missing as 60 s, bounded by the history window', () => {
    const { clock, tidings, socket, connection, send, scheduler } = setup()
    send({ command: 'subscribe', data: ['P'] })
    tidings.hub.publish('default', ['P'], outboundFromValue({ n: 'old' }))
    clock.advance(30_000)
    tidings.hub.publish('default', ['P'], outboundFromValue({ n: 'new' }))
    socket.sent.length = 0
    send({ command: 'replay', data: { age: 0 } })
    scheduler.runAll() // replays are served at the end of the turn
    expect(socket.frames().map((f) => f.n)).toEqual(['old', 'new'])
    socket.sent.length = 0
    send({ command: 'replay', data: { age: 1000 } })
    scheduler.runAll()
    expect(socket.frames().map((f) => f.n)).toEqual(['new'])
    expect(tidings.hub.stats.replays).toBe(2)
    expect(connection.instance.messagesOut).toBe(2) // live deliveries only, not replays
  })

  it('closes with 1008 and subscribes nothing past the subscription limit', () => {
    const { socket, connection, send } = setup({ subscriptionsPerConnection: 3 })
    send({ command: 'subscribe', data: ['a', 'b'] })
    send({ command: 'subscribe', data: ['a', 'b', 'c'] })
    expect(socket.closed).toBeUndefined()
    send({ command: 'subscribe', data: ['d'] })
    expect(socket.closed).toEqual({ code: 1008, reason: 'subscription_limit' })
    expect(connection.open).toBe(false)
  })
})

describe('utf8Length', () => {
  it('matches TextEncoder for ASCII, two- and three-byte characters and surrogate pairs', () => {
    for (const text of ['', 'PHID-USER-abc', 'Grüße', '世界', '🚀', 'a🚀b世c', 'x'.repeat(300)]) {
      expect(utf8Length(text)).toBe(new TextEncoder().encode(text).byteLength)
    }
  })
})
