import { describe, expect, it } from 'vitest'
import { History } from '../../src/hub/history.ts'
import { outboundFromValue } from '../../src/hub/outbound.ts'

const entry = (at: number, n: number) => ({
  at,
  subscribers: ['s'],
  message: outboundFromValue({ n }),
})
const ns = (history: History, since = 0) =>
  [...history.since(since)].map((e) => JSON.parse(e.message.text).n)

describe('History', () => {
  it('keeps at most `size` entries, oldest dropped first', () => {
    const history = new History({ size: 3, age: 60_000, bytes: 1 << 20 })
    for (let n = 1; n <= 5; n++) history.append(entry(1000 + n, n), 1000 + n)
    expect(ns(history)).toEqual([3, 4, 5])
    expect(history.size).toBe(3)
  })

  it('drops entries older than `age`, also when trimmed without a new message', () => {
    const history = new History({ size: 100, age: 1000, bytes: 1 << 20 })
    history.append(entry(0, 1), 0)
    history.append(entry(500, 2), 500)
    history.trim(1200)
    expect(ns(history)).toEqual([2])
    history.trim(5000)
    expect(history.size).toBe(0)
    expect(history.oldest).toBeUndefined()
  })

  it('keeps serialised bytes under `bytes`', () => {
    const one = entry(0, 1).message.bytes.byteLength
    const history = new History({ size: 100, age: 60_000, bytes: one * 2 })
    for (let n = 1; n <= 4; n++) history.append(entry(n, n), n)
    expect(history.bytes).toBeLessThanOrEqual(one * 2)
    expect(ns(history)).toEqual([3, 4])
  })

  it('lists entries since a time, oldest first, and stays correct across compaction', () => {
    const history = new History({ size: 10, age: 60_000, bytes: 1 << 20 })
    for (let n = 1; n <= 500; n++) history.append(entry(n, n), n)
    expect(ns(history)).toEqual([491, 492, 493, 494, 495, 496, 497, 498, 499, 500])
    expect(ns(history, 499)).toEqual([499, 500])
  })

  it('holds nothing when size or age is 0', () => {
    const history = new History({ size: 0, age: 60_000, bytes: 1 << 20 })
    history.append(entry(1, 1), 1)
    expect(history.size).toBe(0)
  })
})
