import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  backoffDelay,
  type ClientOptions,
  type ClientStatus,
  createClient,
  type TidingsClient,
} from '../../clients/browser.ts'
import { TidingsClientError } from '../../clients/errors.ts'
import type { TidingsMessage } from '../../clients/message.ts'
import { type FakeSocket, fakeNetwork, seeded } from './browser-client-fakes.ts'

const SERVERS = ['ws://a.test/~x/', 'ws://b.test/~x/', 'ws://c.test/~x/']

interface Harness {
  client: TidingsClient
  sockets: FakeSocket[]
  statuses: ClientStatus[]
  messages: TidingsMessage[]
  /** The newest socket. */
  last(): FakeSocket
  /** Lets the client's first connect (queued as a microtask) happen. */
  start(): Promise<FakeSocket>
}

function harness(options: Partial<ClientOptions> = {}): Harness {
  const network = fakeNetwork()
  const client = createClient({
    servers: SERVERS,
    WebSocket: network.WebSocket,
    random: seeded(1),
    ...options,
  })
  const statuses: ClientStatus[] = []
  const messages: TidingsMessage[] = []
  client.on('status', (status) => statuses.push(status))
  client.on('message', (message) => messages.push(message))
  const last = (): FakeSocket => {
    const socket = network.sockets.at(-1)
    if (!socket) throw new Error('no socket yet')
    return socket
  }
  return {
    client,
    sockets: network.sockets,
    statuses,
    messages,
    last,
    async start() {
      await Promise.resolve()
      return last()
    },
  }
}

/** The delay of the latest `reconnecting` status. */
function lastDelay(h: Harness): number {
  const status = h.statuses.filter((s) => s.state === 'reconnecting').at(-1)
  if (status?.delayMs === undefined) throw new Error('no reconnecting status')
  return status.delayMs
}

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('browser client: connecting', () => {
  it('connects to a server from the list, subscribes on open and does not replay the first time', async () => {
    const h = harness({ subscriptions: ['PHID-1', 'PHID-2'] })
    const socket = await h.start()
    expect(SERVERS).toContain(socket.url)
    expect(h.statuses.map((s) => s.state)).toEqual(['connecting'])
    socket.open()
    expect(socket.sent).toEqual([{ command: 'subscribe', data: ['PHID-1', 'PHID-2'] }])
    expect(h.client.status).toMatchObject({ state: 'open', url: socket.url })
  })

  it('spreads first connections over every server in the list', async () => {
    const urls = new Set<string>()
    const random = seeded(7)
    for (let i = 0; i < 60; i++) {
      const h = harness({ random })
      urls.add((await h.start()).url)
      h.client.close()
    }
    expect([...urls].sort()).toEqual([...SERVERS].sort())
  })

  it('sends only new ids when subscribing while open, and unsubscribes', async () => {
    const h = harness({ subscriptions: ['A'] })
    const socket = await h.start()
    socket.open()
    h.client.subscribe(['A', 'B'])
    h.client.subscribe('C')
    h.client.unsubscribe(['A', 'nope'])
    expect(socket.sent.slice(1)).toEqual([
      { command: 'subscribe', data: ['B'] },
      { command: 'subscribe', data: ['C'] },
      { command: 'unsubscribe', data: ['A'] },
    ])
    expect(h.client.subscriptions).toEqual(['B', 'C'])
  })

  it('splits a long subscription list across frames', async () => {
    const ids = Array.from({ length: 600 }, (_, i) => `PHID-${i}`)
    const h = harness({ subscriptions: ids })
    const socket = await h.start()
    socket.open()
    const frames = socket.commands('subscribe').map((frame) => frame.data as string[])
    expect(frames.length).toBeGreaterThan(1)
    expect(frames.flat()).toEqual(ids)
  })

  it('gives up on an attempt that does not open within connectTimeoutMs', async () => {
    const h = harness({ connectTimeoutMs: 3000 })
    const first = await h.start()
    vi.advanceTimersByTime(2999)
    expect(h.client.status.state).toBe('connecting')
    vi.advanceTimersByTime(1)
    expect(first.closedWith).toBe(1000)
    expect(h.client.status).toMatchObject({ state: 'reconnecting', reason: 'connect timed out' })
  })
})

describe('browser client: backoff', () => {
  it('keeps every delay within [0, min(cap, base * 2^attempt))', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 600_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, base, cap, r) => {
          const delay = backoffDelay(attempt, base, cap, () => r)
          const bound = Math.min(cap, base * 2 ** attempt)
          return Number.isInteger(delay) && delay >= 0 && (delay < bound || delay === 0)
        }
      )
    )
  })

  it('doubles the bound per failed attempt up to the cap, with full jitter', async () => {
    const random = seeded(42)
    const h = harness({ random, backoff: { baseMs: 100, capMs: 3000 } })
    await h.start()
    const bounds: number[] = []
    const delays: number[] = []
    for (let attempt = 0; attempt < 200; attempt++) {
      h.last().drop(1006)
      const delay = lastDelay(h)
      delays.push(delay)
      bounds.push(Math.min(3000, 100 * 2 ** attempt))
      const before = h.sockets.length
      if (delay > 0) {
        vi.advanceTimersByTime(delay - 1)
        expect(h.sockets.length).toBe(before)
      }
      vi.advanceTimersByTime(1)
      expect(h.sockets.length).toBe(before + 1)
    }
    delays.forEach((delay, i) => {
      expect(delay).toBeGreaterThanOrEqual(0)
      expect(delay).toBeLessThan(bounds[i] as number)
    })
    // Full jitter: once capped, delays spread over the whole [0, cap) range.
    const capped = delays.slice(10)
    expect(Math.max(...capped)).toBeGreaterThan(0.9 * 3000)
    expect(Math.min(...capped)).toBeLessThan(0.1 * 3000)
    expect(Math.max(...delays)).toBeLessThan(3000)
  })

  it('uses the top of the bound when random is near 1: 2^n growth, then the cap', async () => {
    const h = harness({ random: () => 0.9999, backoff: { baseMs: 1000, capMs: 10_000 } })
    await h.start()
    const delays: number[] = []
    for (let i = 0; i < 7; i++) {
      h.last().drop(1006)
      delays.push(lastDelay(h))
      vi.advanceTimersByTime(lastDelay(h))
    }
    expect(delays).toEqual([999, 1999, 3999, 7999, 9999, 9999, 9999])
  })

  it('starts from the base again after a connection that stayed open resetAfterMs', async () => {
    const h = harness({
      random: () => 0.9999,
      backoff: { baseMs: 1000, capMs: 60_000, resetAfterMs: 5000 },
    })
    await h.start()
    for (let i = 0; i < 4; i++) {
      h.last().drop(1006)
      vi.advanceTimersByTime(lastDelay(h))
    }
    expect(lastDelay(h)).toBe(7999)
    h.last().open()
    vi.advanceTimersByTime(5000)
    h.last().drop(1006)
    expect(lastDelay(h)).toBe(999)
  })

  it('keeps growing after connections that close before resetAfterMs', async () => {
    const h = harness({
      random: () => 0.9999,
      backoff: { baseMs: 1000, capMs: 60_000, resetAfterMs: 5000 },
    })
    await h.start()
    const delays: number[] = []
    for (let i = 0; i < 4; i++) {
      h.last().open()
      vi.advanceTimersByTime(4999)
      h.last().drop(1000) // closed soon after opening, e.g. a flapping server
      delays.push(lastDelay(h))
      vi.advanceTimersByTime(lastDelay(h))
    }
    expect(delays).toEqual([999, 1999, 3999, 7999])
  })

  it('reconnects to a different server than the one it lost', async () => {
    const h = harness({ random: seeded(3) })
    await h.start()
    for (let i = 0; i < 50; i++) {
      const lost = h.last()
      lost.open()
      lost.drop(1006)
      expect(h.client.status.next).not.toBe(lost.url)
      vi.advanceTimersByTime(lastDelay(h))
      expect(h.last().url).not.toBe(lost.url)
      expect(h.last()).not.toBe(lost)
    }
  })
})

describe('browser client: close codes', () => {
  it.each([1001, 1012, 1013, 4000, 4001, 4099])(
    'reconnects elsewhere after %i with a jittered delay below the base',
    async (code) => {
      const h = harness({
        random: () => 0.5,
        pingIntervalMs: 0,
        backoff: { baseMs: 1000, resetAfterMs: 5000 },
      })
      const socket = await h.start()
      socket.open()
      vi.advanceTimersByTime(60_000)
      socket.drop(code, 'bye')
      expect(h.client.status).toMatchObject({
        state: 'reconnecting',
        code,
        reason: 'bye',
        delayMs: 500,
      })
      vi.advanceTimersByTime(500)
      expect(h.last().url).not.toBe(socket.url)
    }
  )

  it('keeps away from a server that said "going away" for a minute, not just for one pick', async () => {
    for (let seed = 0; seed < 20; seed++) {
      const h = harness({ random: seeded(seed), pingIntervalMs: 0 })
      const draining = await h.start()
      draining.open()
      draining.drop(4000, 'draining')
      vi.advanceTimersByTime(lastDelay(h))
      const second = h.last()
      second.open()
      second.drop(1006)
      // Neither the server just lost nor the draining one: the third.
      expect(h.client.status.next).toBe(
        SERVERS.find((url) => url !== draining.url && url !== second.url)
      )
      h.client.close()
    }
  })

  it('goes back to a server that drained once the minute is over', async () => {
    const seen = new Set<string>()
    const h = harness({ random: seeded(9), pingIntervalMs: 0 })
    const draining = await h.start()
    draining.open()
    draining.drop(4000)
    vi.advanceTimersByTime(60_000)
    for (let i = 0; i < 30; i++) {
      vi.advanceTimersByTime(lastDelay(h))
      h.last().open()
      vi.advanceTimersByTime(5000)
      h.last().drop(1006)
      seen.add(h.client.status.next as string)
    }
    expect(seen).toContain(draining.url)
  })

  it.each([1008, 1009])('stops after %i: reconnecting would be refused again', async (code) => {
    const h = harness()
    const socket = await h.start()
    socket.open()
    socket.drop(code, 'subscription limit exceeded')
    expect(h.client.status).toMatchObject({ state: 'closed', code })
    vi.advanceTimersByTime(10 * 60_000)
    expect(h.sockets).toHaveLength(1)
    h.client.reconnect()
    expect(h.sockets).toHaveLength(2)
  })

  it('reconnects after 4008 (slow consumer) and replays what it missed', async () => {
    const h = harness({ subscriptions: ['A'] })
    const socket = await h.start()
    socket.open()
    socket.drop(4008, 'slow consumer')
    expect(h.client.status.state).toBe('reconnecting')
    vi.advanceTimersByTime(lastDelay(h))
    h.last().open()
    expect(h.last().commands('replay')).toHaveLength(1)
  })

  it('close() closes the socket with 1000 and never reconnects', async () => {
    const h = harness()
    const socket = await h.start()
    socket.open()
    h.client.close()
    expect(socket.closedWith).toBe(1000)
    expect(h.client.status).toMatchObject({ state: 'closed', code: 1000 })
    socket.drop(1006) // events from a released socket are ignored
    vi.advanceTimersByTime(10 * 60_000)
    expect(h.sockets).toHaveLength(1)
  })

  it('honours close() called by a status listener while reconnecting or connecting', async () => {
    for (const state of ['reconnecting', 'connecting'] as const) {
      const h = harness()
      const first = await h.start()
      first.open()
      h.client.on('status', (status) => {
        if (status.state === state) h.client.close()
      })
      first.drop(1006)
      vi.advanceTimersByTime(10 * 60_000)
      expect(h.client.status.state).toBe('closed')
      expect(h.sockets).toHaveLength(1)
    }
  })

  it('retries when the WebSocket constructor throws', async () => {
    let calls = 0
    const network = fakeNetwork()
    const Flaky = function (this: unknown, url: string) {
      if (++calls === 1) throw new SyntaxError('blocked')
      return new network.WebSocket(url)
    } as unknown as ClientOptions['WebSocket']
    const client = createClient({ servers: SERVERS, WebSocket: Flaky, random: seeded(2) })
    await Promise.resolve()
    expect(client.status).toMatchObject({
      state: 'reconnecting',
      reason: 'cannot connect: blocked',
    })
    vi.advanceTimersByTime(client.status.delayMs as number)
    expect(network.sockets).toHaveLength(1)
    client.close()
  })

  it('close() before the first connect means no connection at all', async () => {
    const h = harness()
    h.client.close()
    await Promise.resolve()
    expect(h.sockets).toHaveLength(0)
  })

  it('close() during a backoff wait cancels the reconnect', async () => {
    const h = harness()
    ;(await h.start()).drop(1006)
    h.client.close()
    vi.advanceTimersByTime(10 * 60_000)
    expect(h.sockets).toHaveLength(1)
  })
})

describe('browser client: replay and resubscribe', () => {
  it('re-sends every subscription after each reconnect, then replays since the last message', async () => {
    let clock = 1_000_000
    const h = harness({ subscriptions: ['A'], now: () => clock })
    let socket = await h.start()
    socket.open()
    h.client.subscribe('B')
    socket.deliver({ subscribers: ['A'], uniqueID: 'm1' })
    clock += 7000
    socket.drop(1006)
    vi.advanceTimersByTime(lastDelay(h))
    socket = h.last()
    clock += 3000
    socket.open()
    expect(socket.sent).toEqual([
      { command: 'subscribe', data: ['A', 'B'] },
      { command: 'replay', data: { age: 10_000 + 1000 } },
    ])
  })

  it('replays since it started when it has seen no message', async () => {
    let clock = 5000
    const h = harness({ subscriptions: ['A'], now: () => clock })
    const socket = await h.start()
    clock += 2000
    socket.drop(1006) // the first attempt failed
    vi.advanceTimersByTime(lastDelay(h))
    clock += 500
    h.last().open()
    expect(h.last().commands('replay')).toEqual([{ command: 'replay', data: { age: 2500 + 1000 } }])
  })

  it('bounds the replay age by the replay window', async () => {
    let clock = 0
    const h = harness({ subscriptions: ['A'], now: () => clock, replayWindowMs: 30_000 })
    const socket = await h.start()
    socket.open()
    clock += 10 * 60_000
    socket.drop(1001)
    vi.advanceTimersByTime(lastDelay(h))
    h.last().open()
    expect(h.last().commands('replay')).toEqual([{ command: 'replay', data: { age: 30_000 } }])
  })

  it('does not replay without subscriptions', async () => {
    const h = harness()
    const socket = await h.start()
    socket.open()
    socket.drop(1006)
    vi.advanceTimersByTime(lastDelay(h))
    h.last().open()
    expect(h.last().sent).toEqual([])
  })
})

describe('browser client: messages and dedup', () => {
  it('delivers each uniqueID once, across reconnects and replays', async () => {
    const h = harness({ subscriptions: ['A'] })
    const first = await h.start()
    first.open()
    first.deliver({ n: 1, subscribers: ['A'], uniqueID: 'u1' })
    first.deliver({ n: 1, subscribers: ['A'], uniqueID: 'u1' }) // cluster copy
    first.drop(1006)
    vi.advanceTimersByTime(lastDelay(h))
    const second = h.last()
    second.open()
    second.deliver({ n: 1, subscribers: ['A'], uniqueID: 'u1' }) // replayed
    second.deliver({ n: 2, subscribers: ['A'], uniqueID: 'u2' })
    expect(h.messages.map((m) => m.n)).toEqual([1, 2])
  })

  it('delivers every message without a uniqueID', async () => {
    const h = harness()
    const socket = await h.start()
    socket.open()
    socket.deliver({ n: 1 })
    socket.deliver({ n: 1 })
    expect(h.messages).toHaveLength(2)
  })

  it('remembers only the last dedupSize ids', async () => {
    const h = harness({ dedupSize: 3 })
    const socket = await h.start()
    socket.open()
    for (const id of ['a', 'b', 'c', 'd', 'c', 'b', 'a']) socket.deliver({ uniqueID: id })
    // 'a' was evicted by 'd' and comes through again; 'b', 'c' were still remembered.
    expect(h.messages.map((m) => m.uniqueID)).toEqual(['a', 'b', 'c', 'd', 'a'])
  })

  it('ignores pongs, non-JSON and non-object frames', async () => {
    const h = harness()
    const socket = await h.start()
    socket.open()
    for (const frame of ['{"type":"pong"}', 'not json', '[1]', 'null', '42']) socket.deliver(frame)
    socket.deliver({ ok: true })
    expect(h.messages).toEqual([{ ok: true }])
  })

  it('keeps delivering to other listeners when one throws', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {})
    const h = harness()
    h.client.on('message', () => {
      throw new Error('listener bug')
    })
    const socket = await h.start()
    socket.open()
    socket.deliver({ n: 1 })
    socket.deliver({ n: 2 })
    expect(h.messages).toHaveLength(2)
    expect(errors).toHaveBeenCalledTimes(2)
    errors.mockRestore()
  })

  it('on() returns a function that removes the listener', async () => {
    const h = harness()
    const seen: unknown[] = []
    const off = h.client.on('message', (message) => seen.push(message))
    const socket = await h.start()
    socket.open()
    socket.deliver({ n: 1 })
    off()
    socket.deliver({ n: 2 })
    expect(seen).toEqual([{ n: 1 }])
  })
})

describe('browser client: keepalive', () => {
  it('pings every 15 s while the server answers', async () => {
    const h = harness()
    const socket = await h.start()
    socket.open()
    for (let i = 1; i <= 4; i++) {
      vi.advanceTimersByTime(14_999)
      expect(socket.commands('ping')).toHaveLength(i - 1)
      vi.advanceTimersByTime(1)
      expect(socket.commands('ping')).toHaveLength(i)
      socket.deliver({ type: 'pong' })
    }
    expect(h.client.status.state).toBe('open')
    expect(h.messages).toEqual([])
  })

  it('drops a connection that stays silent for an interval after a ping', async () => {
    const h = harness()
    const socket = await h.start()
    socket.open()
    vi.advanceTimersByTime(15_000)
    expect(socket.commands('ping')).toHaveLength(1)
    vi.advanceTimersByTime(15_000)
    expect(socket.closedWith).toBe(1000)
    expect(h.client.status).toMatchObject({ state: 'reconnecting', reason: 'no answer to ping' })
  })

  it('stops pinging once the connection is gone', async () => {
    const h = harness({ backoff: { baseMs: 60_000, capMs: 60_000 }, random: () => 0.99 })
    const socket = await h.start()
    socket.open()
    socket.drop(1006)
    vi.advanceTimersByTime(45_000)
    expect(socket.sent.filter((frame) => frame.command === 'ping')).toEqual([])
  })
})

describe('browser client: options', () => {
  const { WebSocket } = fakeNetwork()
  const cases: [Partial<ClientOptions>, string][] = [
    [{ servers: [] }, 'servers'],
    [{ servers: ['http://a.test/'] }, 'servers[0]'],
    [{ servers: ['ws://a.test/', 'nope'] }, 'servers[1]'],
    [{ backoff: { baseMs: 0 } }, 'backoff.baseMs'],
    [{ backoff: { capMs: -1 } }, 'backoff.capMs'],
    [{ replayWindowMs: Number.NaN }, 'replayWindowMs'],
    [{ dedupSize: 0 }, 'dedupSize'],
    [{ pingIntervalMs: -5 }, 'pingIntervalMs'],
    [{ subscriptions: 'PHID-1' as unknown as string[] }, 'subscriptions'],
  ]
  it.each(cases)('refuses %j naming %s', (options, field) => {
    try {
      createClient({ servers: SERVERS, WebSocket, ...options })
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(TidingsClientError)
      expect((error as TidingsClientError).code).toBe('options_invalid')
      expect((error as Error).message).toContain(`"${field}"`)
    }
  })

  it('refuses ids that are not strings', () => {
    const client = createClient({ servers: SERVERS, WebSocket })
    expect(() => client.subscribe([1 as unknown as string])).toThrow(/subscribe\(\)/)
    client.close()
  })
})
