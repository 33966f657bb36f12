import { describe, expect, it } from 'vitest'
import { handleFrame } from '../../src/client/frames.ts'
import { takeToken } from '../../src/client/token-bucket.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { Tidings } from '../../src/tidings.ts'
import { FakeClock, FakeSocket, ManualScheduler, RecordingLogger } from '../helpers/fakes.ts'

function setup(framesPerSecond: number) {
  const clock = new FakeClock(0)
  const logger = new RecordingLogger()
  const config = parseConfig({
    servers: [
      { type: 'client', port: 0 },
      { type: 'admin', port: 0 },
    ],
    limits: { framesPerSecond },
  })
  const tidings = new Tidings({ config, clock, logger, scheduler: new ManualScheduler() })
  const socket = new FakeSocket()
  const connection = tidings.hub.connect(socket, 'default')
  const ping = () => handleFrame(tidings.frameContext, connection, '{"command":"ping","data":null}')
  return { clock, logger, tidings, socket, connection, ping, config }
}

describe('frames per second per connection', () => {
  it('lets a burst of one second worth of frames through, then refills at the rate', () => {
    const { connection } = setup(5)
    const take = (at: number) => takeToken(connection.frameBucket, at, 5)
    for (let i = 0; i < 5; i++) expect(take(0)).toBe(true)
    expect(take(0)).toBe(false)
    expect(take(199)).toBe(false) // 0.995 of a token
    expect(take(200)).toBe(true)
    expect(take(200)).toBe(false)
    // A long pause refills the bucket, never beyond one second's worth.
    for (let i = 0; i < 5; i++) expect(take(60_000)).toBe(true)
    expect(take(60_000)).toBe(false)
  })

  it('does not limit when the rate is 0', () => {
    const { connection } = setup(5)
    for (let i = 0; i < 10_000; i++) expect(takeToken(connection.frameBucket, 0, 0)).toBe(true)
  })

  it('closes a connection that sends frames too fast with 1008, counts and logs it once', () => {
    const { socket, connection, ping, tidings, logger } = setup(3)
    for (let i = 0; i < 3; i++) ping()
    expect(socket.sent).toHaveLength(3)
    expect(socket.closed).toBeUndefined()
    ping()
    expect(socket.closed).toEqual({ code: 1008, reason: 'frame_rate' })
    expect(connection.open).toBe(false)
    expect(tidings.limited.framesPerSecond).toBe(1)
    // Frames still in flight after the close are dropped, not answered or counted again.
    ping()
    expect(socket.sent).toHaveLength(3)
    expect(tidings.limited.framesPerSecond).toBe(1)
    expect(logger.lines).toEqual([
      `${connection.label} Closed with 1008: more frames per second than "limits.framesPerSecond".`,
    ])
  })

  it('counts malformed frames against the rate like any other', () => {
    const { socket, connection, tidings } = setup(2)
    handleFrame(tidings.frameContext, connection, 'garbage')
    handleFrame(tidings.frameContext, connection, '{')
    handleFrame(tidings.frameContext, connection, 'null')
    expect(socket.closed?.code).toBe(1008)
  })

  it('keeps a steady client under the rate open', () => {
    const { clock, socket, ping } = setup(10)
    for (let i = 0; i < 1000; i++) {
      ping()
      clock.advance(100)
    }
    expect(socket.closed).toBeUndefined()
    expect(socket.sent).toHaveLength(1000)
  })

  it('uses the rate the configuration has now (a reload changes it)', () => {
    const { socket, ping, config } = setup(1)
    ping()
    config.limits.framesPerSecond = 0
    for (let i = 0; i < 100; i++) ping()
    expect(socket.closed).toBeUndefined()
  })

  it('defaults to 100 frames per second', () => {
    const config = parseConfig({
      servers: [
        { type: 'client', port: 0 },
        { type: 'admin', port: 0 },
      ],
    })
    expect(config.limits.framesPerSecond).toBe(100)
  })
})
