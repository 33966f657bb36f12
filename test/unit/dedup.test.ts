import { describe, expect, it } from 'vitest'
import { parseMessage } from '../../src/admin/body.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { DedupCache } from '../../src/relay/dedup.ts'
import { dedupKey, uniqueIdOf } from '../../src/relay/envelope.ts'
import { Tidings } from '../../src/tidings.ts'
import { LogLines, microScheduler, RecordingSocket } from '../helpers/cluster-fakes.ts'

describe('DedupCache', () => {
  it('accepts an identity once and refuses it again within the age', () => {
    const cache = new DedupCache({ size: 10, age: 1000 })
    expect(cache.add('a', 0)).toBe(true)
    expect(cache.add('a', 999)).toBe(false)
    expect(cache.add('b', 999)).toBe(true)
  })

  it('forgets identities older than the age', () => {
    const cache = new DedupCache({ size: 10, age: 1000 })
    cache.add('a', 0)
    cache.add('b', 500)
    expect(cache.add('c', 1200)).toBe(true)
    // "a" expired and was dropped; "b" is still remembered.
    expect(cache.size).toBe(2)
    expect(cache.add('a', 1200)).toBe(true)
    expect(cache.add('b', 1200)).toBe(false)
  })

  it('never holds more than `size` identities, forgetting the oldest first', () => {
    const cache = new DedupCache({ size: 100, age: 1_000_000 })
    for (let i = 0; i < 10_000; i++) cache.add(`id-${i}`, i)
    expect(cache.size).toBe(100)
    expect(cache.evicted).toBe(9_900)
    expect(cache.add('id-9999', 10_000)).toBe(false)
    expect(cache.add('id-0', 10_000)).toBe(true)
  })

  it('remembers nothing when size is 0', () => {
    const cache = new DedupCache({ size: 0, age: 1000 })
    expect(cache.add('a', 0)).toBe(true)
    expect(cache.add('a', 0)).toBe(true)
    expect(cache.size).toBe(0)
  })
})

describe('envelope', () => {
  it('reads a uniqueID: a bounded non-empty string or a number; none when absent or null', () => {
    expect(uniqueIdOf('U1')).toBe('U1')
    expect(uniqueIdOf(42)).toBe('42')
    expect(uniqueIdOf(undefined)).toBeUndefined()
    expect(uniqueIdOf(null)).toBeUndefined()
    for (const bad of ['', 'x'.repeat(257), { a: 1 }, ['U'], true, Number.NaN]) {
      expect(uniqueIdOf(bad)).toBe(false)
    }
  })

  it('keys the dedup memory by instance and uniqueID', () => {
    expect(dedupKey('alpha', 'U1')).not.toBe(dedupKey('beta', 'U1'))
    expect(dedupKey('alpha', 'U1')).toBe(dedupKey('alpha', 'U1'))
  })
})

describe('Tidings.ingest deduplication', () => {
  function node(withForwarder: boolean) {
    const config = parseConfig({
      servers: [
        { type: 'client', port: 0 },
        { type: 'admin', port: 0 },
      ],
    })
    const tidings = new Tidings({
      config,
      clock: { now: () => 0 },
      logger: new LogLines(),
      scheduler: microScheduler,
      fingerprint: 'FPFPFPFPFPFPFPFP',
    })
    const forwarded: { instance: string; text: string; touched: readonly string[] }[] = []
    if (withForwarder) {
      tidings.forwarders.push({
        forward: ({ instance, body, touched }) =>
          forwarded.push({ instance, text: new TextDecoder().decode(body), touched }),
      })
    }
    const socket = new RecordingSocket()
    tidings.hub.subscribe(tidings.hub.connect(socket, 'default'), ['P'])
    const ingest = (value: Record<string, unknown>) =>
      tidings.ingest('default', parseMessage(new TextEncoder().encode(JSON.stringify(value))))
    return { tidings, forwarded, socket, ingest }
  }

  it('delivers a uniqueID once however many times it arrives, and relays it once', () => {
    const { tidings, forwarded, socket, ingest } = node(true)
    expect(ingest({ uniqueID: 'U', subscribers: ['P'] })).toBe(true)
    expect(ingest({ uniqueID: 'U', subscribers: ['P'], touched: ['OTHER'] })).toBe(false)
    expect(socket.sent).toHaveLength(1)
    expect(forwarded).toHaveLength(1)
    expect(tidings.duplicates).toBe(1)
    // Aphlict's rule still comes first: a message we stamped is dropped without counting.
    expect(ingest({ uniqueID: 'V', subscribers: ['P'], touched: ['FPFPFPFPFPFPFPFP'] })).toBe(false)
    expect(tidings.duplicates).toBe(1)
  })

  it('gives a message without uniqueID a random one, the same for local clients and peers', () => {
    const { forwarded, socket, ingest, tidings } = node(true)
    ingest({ key: 'a', subscribers: ['P'] })
    ingest({ key: 'a', subscribers: ['P'] })
    const frames = socket.frames()
    expect(frames).toHaveLength(2)
    const ids = frames.map((frame) => frame.uniqueID as string)
    for (const id of ids) expect(id).toMatch(/^[a-z2-7]{32}$/)
    expect(ids[0]).not.toBe(ids[1])
    expect(Object.keys(frames[0] as object)).toEqual(['key', 'subscribers', 'uniqueID', 'touched'])
    // Peers get the very bytes local clients got, with no tidings-only key.
    expect(forwarded.map((f) => JSON.parse(f.text))).toEqual(frames)
    // A copy coming back by any path carries this node's fingerprint, so it is dropped as a loop
    // (an id drawn here needs no remembering: nobody could have posted it before).
    const copy = {
      key: 'a',
      subscribers: ['P'],
      uniqueID: ids[0],
      touched: ['FPFPFPFPFPFPFPFP', 'X'],
    }
    expect(ingest(copy)).toBe(false)
    expect(tidings.loops).toBe(1)
    expect(tidings.dedup.size).toBe(0)
  })

  it('is not fooled by ids posted ahead of time: fresh ones cannot be guessed', () => {
    const { socket, ingest } = node(true)
    for (let n = 1; n <= 50; n++) {
      ingest({ subscribers: [], 'tidings.origin': `FPFPFPFPFPFPFPFP:${n.toString(36)}` })
      ingest({ subscribers: [], uniqueID: `FPFPFPFPFPFPFPFP:${n.toString(36)}` })
    }
    for (let n = 0; n < 20; n++) expect(ingest({ key: n, subscribers: ['P'] })).toBe(true)
    expect(socket.sent).toHaveLength(20)
  })

  it('forgets a uniqueID again when delivery fails after it was recorded', () => {
    const { tidings, socket, ingest } = node(true)
    const publish = tidings.hub.publish.bind(tidings.hub)
    tidings.hub.publish = () => {
      throw new Error('boom')
    }
    expect(() => ingest({ uniqueID: 'W', subscribers: ['P'] })).toThrow('boom')
    tidings.hub.publish = publish
    expect(ingest({ uniqueID: 'W', subscribers: ['P'] })).toBe(true)
    expect(socket.sent).toHaveLength(1)
  })
})
