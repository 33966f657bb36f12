import { describe, expect, it } from 'vitest'
import { parseMessage } from '../../src/admin/body.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { outboundFromValue } from '../../src/hub/outbound.ts'
import { DedupCache } from '../../src/relay/dedup.ts'
import { identify, ORIGIN_KEY, relayBody, takeOrigin } from '../../src/relay/envelope.ts'
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
  it('identifies a message by its uniqueID, scoped to the instance', () => {
    const a = identify('alpha', { uniqueID: 'U1' }, 'FP:1', undefined)
    const b = identify('beta', { uniqueID: 'U1' }, undefined, undefined)
    expect(a?.origin).toBeUndefined()
    expect(a?.key).not.toBe(b?.key)
  })

  it('falls back to the origin id it arrived with, then to a fresh one, then to none', () => {
    expect(identify('x', {}, 'FP:7', () => 'NEW:1')?.origin).toBe('FP:7')
    expect(identify('x', { uniqueID: '' }, undefined, () => 'NEW:1')?.origin).toBe('NEW:1')
    expect(identify('x', { uniqueID: null }, undefined, undefined)).toBeUndefined()
  })

  it('takes the origin key out of the message so local clients never see it', () => {
    const value: Record<string, unknown> = { a: 1, [ORIGIN_KEY]: 'FP:3', subscribers: [] }
    expect(takeOrigin(value)).toBe('FP:3')
    expect(Object.keys(value)).toEqual(['a', 'subscribers'])
    expect(takeOrigin({ [ORIGIN_KEY]: 42 })).toBe('42')
    expect(takeOrigin({ [ORIGIN_KEY]: { nested: true } })).toBeUndefined()
  })

  it('relays the delivered bytes themselves when there is no origin id', () => {
    const outbound = outboundFromValue({ uniqueID: 'U', subscribers: ['P'], touched: ['F'] })
    expect(relayBody(outbound, undefined)).toBe(outbound.bytes)
  })

  it('appends the origin id as the last key of a byte-correct UTF-8 body', () => {
    const outbound = outboundFromValue({ text: 'Grüße 🚀', subscribers: ['P'], touched: ['F'] })
    const body = relayBody(outbound, 'FP:a')
    const text = new TextDecoder('utf-8', { fatal: true }).decode(body)
    expect(JSON.parse(text)).toEqual({
      text: 'Grüße 🚀',
      subscribers: ['P'],
      touched: ['F'],
      [ORIGIN_KEY]: 'FP:a',
    })
    expect(body.byteLength).toBe(new TextEncoder().encode(text).byteLength)
    expect(body.byteLength).toBeGreaterThan(text.length)
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
      tidings.forwarder = {
        forward: (instance, body, touched) =>
          forwarded.push({ instance, text: new TextDecoder().decode(body), touched }),
      }
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

  it('gives a message without uniqueID an origin id that peers see and local clients do not', () => {
    const { forwarded, socket, ingest } = node(true)
    ingest({ key: 'a', subscribers: ['P'] })
    ingest({ key: 'b', subscribers: ['P'] })
    expect(socket.frames()).toEqual([
      { key: 'a', subscribers: ['P'], touched: ['FPFPFPFPFPFPFPFP'] },
      { key: 'b', subscribers: ['P'], touched: ['FPFPFPFPFPFPFPFP'] },
    ])
    const origins = forwarded.map((f) => JSON.parse(f.text)[ORIGIN_KEY])
    expect(origins).toEqual(['FPFPFPFPFPFPFPFP:1', 'FPFPFPFPFPFPFPFP:2'])
    // A copy of "a" coming back by another path is recognised by its origin id.
    expect(ingest({ key: 'a', subscribers: ['P'], touched: ['X'], [ORIGIN_KEY]: origins[0] })).toBe(
      false
    )
  })

  it('adds no origin id on a node without peers (nothing to relay)', () => {
    const { socket, ingest } = node(false)
    ingest({ key: 'a', subscribers: ['P'] })
    ingest({ key: 'a', subscribers: ['P'] })
    expect(socket.sent).toHaveLength(2)
  })
})
