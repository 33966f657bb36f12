import { describe, expect, it } from 'vitest'
import { closeInWaves, DRAIN_REASON, planWaves, shuffle } from '../../src/node/drain.ts'
import { FakeSocket, testHub } from '../helpers/fakes.ts'

/** A deterministic [0, 1) sequence. */
function seeded(seed = 42): () => number {
  let state = seed
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31
    return state / 2 ** 31
  }
}

describe('planWaves', () => {
  it('closes every socket once, in waves that each fire inside their own slot of the window', () => {
    for (const [count, waves, windowMs] of [
      [500, 20, 10_000],
      [7, 20, 1000],
      [1, 5, 3000],
      [1000, 3, 0],
    ] as const) {
      const plan = planWaves(count, { windowMs, waves, random: seeded(count) })
      expect(plan.reduce((sum, wave) => sum + wave.count, 0)).toBe(count)
      expect(plan.length).toBe(Math.min(waves, count))
      const slot = windowMs / plan.length
      plan.forEach((wave, i) => {
        expect(wave.at).toBeGreaterThanOrEqual(Math.floor(i * slot))
        expect(wave.at).toBeLessThanOrEqual(Math.max(0, Math.ceil((i + 1) * slot) - 1))
        expect(wave.count).toBeGreaterThanOrEqual(Math.floor(count / plan.length))
        expect(wave.count).toBeLessThanOrEqual(Math.ceil(count / plan.length))
      })
    }
  })

  it('varies the wave times from one drain to the next', () => {
    const a = planWaves(100, { windowMs: 10_000, waves: 10, random: seeded(1) })
    const b = planWaves(100, { windowMs: 10_000, waves: 10, random: seeded(2) })
    expect(a.map((wave) => wave.at)).not.toEqual(b.map((wave) => wave.at))
  })

  it('plans nothing for no sockets', () => {
    expect(planWaves(0, { windowMs: 1000, waves: 5 })).toEqual([])
  })
})

describe('shuffle', () => {
  it('permutes without losing or duplicating items', () => {
    const items = Array.from({ length: 100 }, (_, i) => i)
    const shuffled = shuffle([...items], seeded(7))
    expect(shuffled).not.toEqual(items)
    expect([...shuffled].sort((x, y) => x - y)).toEqual(items)
  })
})

describe('closeInWaves', () => {
  it('closes each open socket with 4000 "draining" at its wave and skips sockets already gone', async () => {
    const hub = testHub({
      limits: { subscriptionsPerConnection: 10, slowConsumerBytes: 1 << 20, fanoutSlice: 100 },
      history: { size: 0, age: 0, bytes: 0 },
    })
    const sockets = Array.from({ length: 10 }, () => new FakeSocket())
    const connections = sockets.map((socket) => hub.connect(socket, 'i'))
    const timers: { task: () => void; ms: number }[] = []
    const done = closeInWaves(
      connections,
      { windowMs: 1000, waves: 4, random: seeded(3) },
      (connection) => {
        hub.disconnect(connection)
        connection.socket.close(4000, DRAIN_REASON)
      },
      { setTimeout: (task, ms) => timers.push({ task, ms }) }
    )
    expect(timers).toHaveLength(4)
    hub.disconnect(connections[0] as (typeof connections)[number])
    timers.sort((a, b) => a.ms - b.ms)
    timers[0]?.task()
    const afterFirst = sockets.filter((socket) => socket.closed).length
    expect(afterFirst).toBeGreaterThan(0)
    expect(afterFirst).toBeLessThan(10)
    for (const timer of timers.slice(1)) timer.task()
    const result = await done
    expect(result).toEqual({ closed: 9, waves: 4 })
    expect(sockets[0]?.closed).toBeUndefined()
    for (const socket of sockets.slice(1))
      expect(socket.closed).toEqual({ code: 4000, reason: 'draining' })
    expect(hub.find('i')?.active).toBe(0)
  })
})
