import { describe, expect, it } from 'vitest'
import { entryCost, History, HistoryLedger } from '../../src/hub/history.ts'
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

  it('keeps the cost of its entries (bytes, ids and overhead) under `bytes`', () => {
    const one = entryCost(entry(0, 1))
    expect(one).toBeGreaterThan(entry(0, 1).message.bytes.byteLength)
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

  it('bounds all histories of a ledger together, dropping the oldest anywhere first', () => {
    const one = entryCost(entry(0, 1))
    let evicted = 0
    const ledger = new HistoryLedger(
      () => one * 3,
      (count) => {
        evicted += count
      }
    )
    const options = { size: 100, age: 60_000, bytes: 1 << 20 }
    const a = new History(options, ledger)
    const b = new History(options, ledger)
    a.append(entry(1, 1), 1)
    b.append(entry(2, 2), 2)
    a.append(entry(3, 3), 3)
    b.append(entry(4, 4), 4) // the fourth pushes out the oldest, a's first
    expect(ns(a)).toEqual([3])
    expect(ns(b)).toEqual([2, 4])
    expect(ledger.bytes).toBe(one * 3)
    expect(evicted).toBe(1)
    // Trimming by age gives the bytes back to the ledger.
    a.trim(60_004)
    expect(a.size).toBe(0)
    expect(ledger.bytes).toBe(one * 2)
  })

  it('keeps its order bounded when instances trim on their own', () => {
    const ledger = new HistoryLedger(() => Number.POSITIVE_INFINITY)
    const quiet = new History({ size: 100, age: 60_000, bytes: 1 << 20 }, ledger)
    const busy = new History({ size: 2, age: 60_000, bytes: 1 << 20 }, ledger)
    quiet.append(entry(0, 0), 0)
    for (let n = 1; n <= 20_000; n++) busy.append(entry(n, n), n)
    const kept = [entry(0, 0), entry(19_999, 19_999), entry(20_000, 20_000)]
    expect(ledger.bytes).toBe(kept.reduce((sum, e) => sum + entryCost(e), 0))
    expect(ns(busy)).toEqual([19_999, 20_000])
    expect(ns(quiet)).toEqual([0])
  })
})
