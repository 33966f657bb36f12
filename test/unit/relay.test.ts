import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/parse.ts'
import { fullJitter } from '../../src/relay/backoff.ts'
import { Relay } from '../../src/relay/relay.ts'
import { Deque } from '../../src/util/deque.ts'
import {
  FakeTime,
  FakeTransport,
  LogLines,
  microScheduler,
  receipt,
  settle,
} from '../helpers/cluster-fakes.ts'

const A = 'http://a.example:22281'
const B = 'http://b.example:22281'
const encoder = new TextEncoder()

function setup(relay: Record<string, unknown> = {}, cluster?: Record<string, unknown>[]) {
  const config = parseConfig({
    servers: [
      { type: 'client', port: 0 },
      { type: 'admin', port: 0 },
    ],
    cluster: cluster ?? [
      { host: 'a.example', port: 22281, protocol: 'http' },
      { host: 'b.example', port: 22281, protocol: 'http' },
    ],
    relay: { retryBase: 100, retryMax: 1000, failures: 3, timeout: 5000, ...relay },
  })
  const time = new FakeTime()
  const transport = new FakeTransport()
  const logger = new LogLines()
  const random = { value: 0.9999 }
  const instance = new Relay({
    config,
    fingerprint: 'SELFSELFSELFSELF',
    transport,
    clock: time,
    logger,
    scheduler: microScheduler,
    timers: time,
    random: () => random.value,
  })
  let n = 0
  const send = (touched: string[] = ['ORIGIN'], instanceName = 'default') => {
    const body = encoder.encode(JSON.stringify({ n: ++n, subscribers: ['P'], touched }))
    instance.forward({ instance: instanceName, body, touched, subscribers: ['P'], at: time.now() })
  }
  return { relay: instance, time, transport, logger, random, send }
}

const statusOf = (relay: Relay, origin: string) => relay.status().find((s) => s.peer === origin)

describe('Relay', () => {
  it('posts the body to every peer after the caller returns, with the instance', async () => {
    const { relay, transport, time } = setup()
    const body = encoder.encode('{"text":"Grüße 🚀","subscribers":["P"],"touched":["X"]}')
    relay.forward({ instance: 'alpha.b', body, touched: ['X'], subscribers: ['P'], at: time.now() })
    expect(transport.calls).toHaveLength(0)
    await settle()
    expect(transport.calls.map((c) => [c.peer.origin, c.instance])).toEqual([
      [A, 'alpha.b'],
      [B, 'alpha.b'],
    ])
    expect(transport.calls[0]?.body).toBe(body)
  })

  it('learns each peer fingerprint from its receipt and skips peers that already touched a message', async () => {
    const { relay, transport, send } = setup()
    transport.auto = (call) => receipt(call.peer.origin === A ? 'FPA' : 'FPB')
    send(['ORIGIN'])
    await settle()
    expect(statusOf(relay, A)?.fingerprint).toBe('FPA')
    send(['ORIGIN', 'FPA'])
    await settle()
    expect(transport.callsTo(A)).toHaveLength(1)
    expect(transport.callsTo(B)).toHaveLength(2)
    expect(statusOf(relay, A)).toMatchObject({ skipped: 1, relayed: 1, state: 'up' })
  })

  it('learns the new fingerprint of a restarted peer and logs the change once', async () => {
    const { relay, transport, logger, send } = setup({}, [
      { host: 'a.example', port: 22281, protocol: 'http' },
    ])
    let fingerprint = 'FIRST'
    transport.auto = () => receipt(fingerprint)
    send()
    send()
    await settle()
    fingerprint = 'SECOND'
    send()
    send()
    await settle()
    expect(statusOf(relay, A)?.fingerprint).toBe('SECOND')
    expect(logger.lines.filter((l) => l.includes('fingerprint'))).toEqual([
      `Cluster peer ${A} has fingerprint "FIRST".`,
      `Cluster peer ${A} restarted (or several servers answer at that address): fingerprint "FIRST" is now "SECOND".`,
    ])
    send(['ORIGIN', 'SECOND'])
    await settle()
    expect(transport.calls).toHaveLength(4)
  })

  it('logs a peer whose fingerprint changes on every receipt once per interval, not per message', async () => {
    const { relay, transport, logger, send } = setup({}, [
      { host: 'lb.example', port: 22281, protocol: 'http' },
    ])
    let n = 0
    // A load-balanced name: every answer comes from another server.
    transport.auto = () => receipt(`FP${n++}`)
    for (let i = 0; i < 40; i++) {
      send()
      await settle()
    }
    const changes = logger.lines.filter((line) => line.includes('is now'))
    expect(changes).toHaveLength(1)
    expect(relay.status()[0]?.relayed).toBe(40)
  })

  it('recognises itself from its own receipt and never relays to that entry again', async () => {
    const { relay, transport, send } = setup()
    transport.auto = (call) => receipt(call.peer.origin === A ? 'SELFSELFSELFSELF' : 'FPB')
    send()
    await settle()
    for (let i = 0; i < 5; i++) send()
    await settle()
    expect(transport.callsTo(A)).toHaveLength(1)
    expect(transport.callsTo(B)).toHaveLength(6)
    expect(statusOf(relay, A)?.state).toBe('self')
  })

  it('recognises a loopback entry for its own admin port without any round trip', async () => {
    const { relay, transport, send } = setup({}, [
      { host: '127.0.0.1', port: 4001, protocol: 'http' },
      { host: 'localhost', port: 4002, protocol: 'http' },
      { host: '127.0.0.1', port: 4003, protocol: 'http' },
      { host: '127.0.0.2', port: 4004, protocol: 'http' },
    ])
    relay.recogniseLocal([
      { host: '0.0.0.0', port: 4001, tls: false },
      { host: '127.0.0.1', port: 4002, tls: false },
      { host: '127.0.0.1', port: 4003, tls: true },
      { host: '127.0.0.1', port: 4004, tls: false },
    ])
    transport.auto = () => receipt('OTHER')
    send()
    await settle()
    expect(relay.status().map((s) => s.state)).toEqual(['self', 'self', 'up', 'up'])
    expect(relay.status()[0]?.fingerprint).toBe('SELFSELFSELFSELF')
    expect(transport.calls.map((c) => c.peer.origin)).toEqual([
      'http://127.0.0.1:4003',
      'http://127.0.0.2:4004',
    ])
  })

  it('retries a failed relay after a full-jitter backoff that doubles per failure up to retryMax', async () => {
    const { relay, time, transport, send } = setup({ failures: 10 }, [
      { host: 'a.example', port: 22281, protocol: 'http' },
    ])
    transport.auto = () => new Error('connect ECONNREFUSED')
    send()
    await settle()
    const delays: number[] = []
    for (let attempt = 1; attempt <= 6; attempt++) {
      delays.push(time.delays()[0] as number)
      await time.advance(time.delays()[0] as number)
    }
    // random() = 0.9999 → almost the ceiling: 100, 200, 400, 800, then capped at 1000.
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000])
    expect(transport.calls).toHaveLength(7)
    expect(statusOf(relay, A)).toMatchObject({
      state: 'retrying',
      failures: 7,
      queue: 1,
      lastError: 'connect ECONNREFUSED',
    })
  })

  it('draws each delay uniformly below the ceiling (full jitter)', () => {
    expect(fullJitter(1, 100, 1000, () => 0)).toBe(0)
    expect(fullJitter(3, 100, 1000, () => 0.5)).toBe(200)
    expect(fullJitter(40, 100, 1000, () => 0.9999)).toBe(1000)
  })

  it('opens the circuit after `failures` failures with one log line, probes one at a time, and closes on success', async () => {
    const { relay, time, transport, logger, send } = setup({ window: 4 }, [
      { host: 'a.example', port: 22281, protocol: 'http' },
    ])
    let up = false
    transport.auto = () => (up ? receipt('FPA') : new Error('connect ECONNREFUSED'))
    for (let i = 0; i < 4; i++) send()
    await settle()
    // Four requests in flight failed together: that is one failure, not four.
    expect(statusOf(relay, A)?.failures).toBe(1)
    await time.advance(100)
    await time.advance(200)
    expect(statusOf(relay, A)).toMatchObject({ state: 'down', failures: 3 })
    const probesBefore = transport.calls.length
    for (let i = 0; i < 10; i++) await time.advance(1000)
    for (let i = 0; i < 20; i++) send()
    await time.advance(1000)
    // While down: exactly one request per probe.
    expect(transport.calls.length - probesBefore).toBe(11)
    expect(logger.lines.filter((l) => l.includes('is down'))).toHaveLength(1)
    up = true
    await time.advance(1000)
    expect(statusOf(relay, A)).toMatchObject({ state: 'up', failures: 0, queue: 0 })
    expect(logger.lines.filter((l) => l.includes('is back up'))).toHaveLength(1)
    expect(logger.lines.filter((l) => l.startsWith('warn: '))).toHaveLength(1)
  })

  it('says how long a message waited in the queue, and a hello probes down peers at once', async () => {
    const { relay, time, transport, logger, send } = setup(
      { failures: 1, retryBase: 20_000, retryMax: 60_000 },
      [
        { host: 'a.example', port: 22281, protocol: 'http' },
        { host: 'b.example', port: 22281, protocol: 'http' },
      ]
    )
    let upA = false
    transport.auto = (call) =>
      call.peer.origin === B || upA ? receipt(call.peer.origin) : new Error('ECONNREFUSED')
    send()
    await settle()
    expect(transport.calls.map((call) => call.queuedMs)).toEqual([0, 0])
    expect(statusOf(relay, A)?.state).toBe('down')
    // Down for a back-off of almost 20 s (random 0.9999): the queue waits for it.
    await time.advance(3000)
    send()
    await settle()
    expect(statusOf(relay, A)?.queue).toBe(2)
    expect(time.delays()[0]).toBeGreaterThan(10_000)

    upA = true
    expect(relay.heardHello()).toBe(1)
    await settle()
    expect(statusOf(relay, A)).toMatchObject({ state: 'up', queue: 0, relayed: 2 })
    // The probe carried the first message 3 s late; the second one went with it.
    expect(transport.callsTo(A).map((call) => call.queuedMs)).toEqual([0, 3000, 0])
    expect(logger.lines).toContain('A cluster node started; probing 1 down peers now.')
    // Hellos are heard at most once a second, and a peer that is up is left alone.
    expect(relay.heardHello()).toBe(0)
    await time.advance(1000)
    expect(relay.heardHello()).toBe(0)
  })

  it('says hello to every peer but itself', async () => {
    const { relay, transport } = setup({}, [
      { host: 'a.example', port: 22281, protocol: 'http' },
      { host: '127.0.0.1', port: 22281, protocol: 'http' },
    ])
    relay.recogniseLocal([{ host: '127.0.0.1', port: 22281, tls: false }])
    relay.hello()
    expect(transport.hellos).toEqual([[A, 'SELFSELFSELFSELF']])
  })

  it('times out a hung request, counts a failure and sends the message again', async () => {
    const { relay, time, transport, send } = setup({ timeout: 2000 }, [
      { host: 'a.example', port: 22281, protocol: 'http' },
    ])
    send()
    await settle()
    expect(transport.pending.size).toBe(1)
    await time.advance(2000)
    expect(transport.calls[0]?.signal.aborted).toBe(true)
    expect(statusOf(relay, A)).toMatchObject({
      state: 'retrying',
      lastError: 'timed out after 2000 ms',
      queue: 1,
    })
    transport.auto = () => receipt('FPA')
    await time.advance(100)
    expect(statusOf(relay, A)).toMatchObject({ state: 'up', relayed: 1, queue: 0 })
    expect(transport.calls[1]?.text).toBe(transport.calls[0]?.text)
  })

  it('keeps at most `window` requests in flight per peer', async () => {
    const { transport, send } = setup({ window: 3 }, [
      { host: 'a.example', port: 22281, protocol: 'http' },
    ])
    for (let i = 0; i < 10; i++) send()
    await settle()
    expect(transport.pending.size).toBe(3)
    for (const call of [...transport.pending]) call.resolve(receipt('FPA'))
    await settle()
    expect(transport.pending.size).toBe(3)
    expect(transport.calls).toHaveLength(6)
  })

  it('bounds the queue by count, dropping the oldest and counting them', async () => {
    const { relay, transport, send } = setup({ window: 1, queue: 5 }, [
      { host: 'a.example', port: 22281, protocol: 'http' },
    ])
    for (let i = 0; i < 50; i++) send()
    await settle()
    // The queue held the newest five; one of them is now in flight.
    expect(statusOf(relay, A)).toMatchObject({ queue: 4, inFlight: 1, dropped: 45 })
    transport.auto = () => receipt('FPA')
    for (const call of [...transport.pending]) call.resolve(receipt('FPA'))
    await settle()
    expect(transport.calls.map((c) => JSON.parse(c.text).n)).toEqual([46, 47, 48, 49, 50])
  })

  it('bounds the queue by bytes', async () => {
    const { relay, send } = setup({ window: 1, queueBytes: 1024 }, [
      { host: 'a.example', port: 22281, protocol: 'http' },
    ])
    for (let i = 0; i < 200; i++) send()
    await settle()
    const status = statusOf(relay, A)
    // Bodies are 48 to 50 bytes: at most 1024 bytes of them stay queued.
    expect(status?.queue).toBeGreaterThan(15)
    expect((status?.queue ?? 0) * 48).toBeLessThanOrEqual(1024)
    expect((status?.dropped ?? 0) + (status?.queue ?? 0) + (status?.inFlight ?? 0)).toBe(200)
  })

  it('drops queued messages older than maxAge instead of sending them late', async () => {
    const { relay, time, transport, send } = setup({ maxAge: 3000, failures: 1 }, [
      { host: 'a.example', port: 22281, protocol: 'http' },
    ])
    transport.auto = () => new Error('connect ECONNREFUSED')
    send()
    await settle()
    await time.advance(5000)
    transport.auto = () => receipt('FPA')
    send()
    await time.advance(1000)
    expect(statusOf(relay, A)).toMatchObject({ relayed: 1, queue: 0 })
    expect(statusOf(relay, A)?.dropped).toBeGreaterThanOrEqual(1)
    expect(JSON.parse(transport.calls.at(-1)?.text ?? '{}').n).toBe(2)
  })

  it('does not retry a message the peer rejects with a 4xx, but 503 and 401 are retried', async () => {
    const { relay, time, transport, send } = setup({}, [
      { host: 'a.example', port: 22281, protocol: 'http' },
    ])
    transport.auto = () => ({ status: 400, body: '' })
    send()
    await settle()
    expect(statusOf(relay, A)).toMatchObject({ state: 'up', rejected: 1, queue: 0, failures: 0 })
    let answers = [503, 401, 200]
    transport.auto = () => {
      const status = answers[0] as number
      answers = answers.slice(1)
      return status === 200 ? receipt('FPA') : { status, body: '' }
    }
    send()
    await settle()
    expect(statusOf(relay, A)).toMatchObject({ state: 'retrying', lastError: 'answered HTTP 503' })
    await time.advance(100)
    expect(statusOf(relay, A)?.lastError).toBe('answered HTTP 401')
    await time.advance(200)
    expect(statusOf(relay, A)).toMatchObject({ state: 'up', relayed: 1 })
    expect(transport.calls).toHaveLength(4)
  })

  it('carries the secret for each peer: its own, else the top-level one', async () => {
    const config = parseConfig({
      servers: [
        { type: 'client', port: 0 },
        { type: 'admin', port: 0 },
      ],
      secret: 'top',
      cluster: [
        { host: 'a.example', port: 22281, protocol: 'http' },
        { host: 'b.example', port: 22281, protocol: 'https', secret: 'own' },
      ],
    })
    const transport = new FakeTransport()
    const time = new FakeTime()
    const relay = new Relay({
      config,
      fingerprint: 'SELF',
      transport,
      clock: time,
      logger: new LogLines(),
      scheduler: microScheduler,
      timers: time,
    })
    relay.forward({
      instance: 'default',
      body: encoder.encode('{}'),
      touched: [],
      subscribers: [],
      at: time.now(),
    })
    await settle()
    expect(transport.calls.map((c) => [c.peer.origin, c.peer.secret])).toEqual([
      [A, 'top'],
      ['https://b.example:22281', 'own'],
    ])
  })

  it('flushes queued relays on close, then aborts what is left and closes the transport', async () => {
    const { relay, time, transport, send } = setup({}, [
      { host: 'a.example', port: 22281, protocol: 'http' },
    ])
    send()
    await settle()
    const closing = relay.close(500)
    await time.advance(100)
    transport.pending.values().next().value?.resolve(receipt('FPA'))
    send()
    await time.advance(100)
    // The second message is in flight and never answered: close gives up at the deadline.
    await time.advance(400)
    await closing
    expect(transport.closed).toBe(true)
    expect(transport.calls[1]?.signal.aborted).toBe(true)
    send()
    await settle()
    expect(transport.calls).toHaveLength(2)
  })
})

describe('Deque', () => {
  it('keeps FIFO order across wrap-around, growth and unshift', () => {
    const deque = new Deque<number>(2)
    const model: number[] = []
    let next = 0
    for (let step = 0; step < 2000; step++) {
      const op = (step * 7919) % 5
      if (op < 2) {
        deque.push(next)
        model.push(next++)
      } else if (op < 4) {
        expect(deque.shift()).toBe(model.shift())
      } else {
        deque.unshift(next)
        model.unshift(next++)
      }
      expect(deque.length).toBe(model.length)
      expect(deque.peek()).toBe(model[0])
    }
  })
})
