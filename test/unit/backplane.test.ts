/**
 * The backplane's own rules, in-process with fake time: the envelope a node reads from the
 * broker, the outbox bounds, and the channel interest (linger, one command per turn,
 * coverage). The broker itself is real Redis in test/node/backplane*.test.ts.
 */
import { describe, expect, it } from 'vitest'
import type { Broker, StreamEntry } from '../../src/backplane/broker.ts'
import { decodeEnvelope, encodeEnvelope } from '../../src/backplane/envelope.ts'
import { Interest } from '../../src/backplane/interest.ts'
import { brokerNames } from '../../src/backplane/names.ts'
import { Outbox } from '../../src/backplane/outbox.ts'
import { FakeTime, microScheduler, settle } from '../helpers/cluster-fakes.ts'

const encoder = new TextEncoder()
const body = (text: string) => encoder.encode(text)

describe('backplane envelope', () => {
  it('carries sender, instance and queue time ahead of the body, byte for byte', () => {
    const payload = encodeEnvelope({
      from: 'FPFPFPFPFPFPFPFP',
      instance: 'phorge',
      queuedMs: 250,
      body: body('{"text":"Grüße 🚀","subscribers":["P"]}'),
    })
    const envelope = decodeEnvelope(payload)
    expect(envelope).toMatchObject({ from: 'FPFPFPFPFPFPFPFP', instance: 'phorge', queuedMs: 250 })
    expect(new TextDecoder().decode((envelope as { body: Uint8Array }).body)).toBe(
      '{"text":"Grüße 🚀","subscribers":["P"]}'
    )
  })

  it('says why a payload is not one of ours instead of throwing', () => {
    const cases: [string, string][] = [
      ['{"subscribers":[]}', 'no header line'],
      ['nope\n{}', 'a header that is not JSON'],
      ['[1]\n{}', 'envelope version undefined'],
      ['{"v":2,"f":"x","i":"d","q":0}\n{}', 'envelope version 2'],
      ['{"v":1,"i":"d","q":0}\n{}', 'no sender fingerprint'],
      ['{"v":1,"f":"x","i":"bad name","q":0}\n{}', 'no valid instance name'],
      ['{"v":1,"f":"x","i":"d","q":-1}\n{}', 'no valid queue time'],
      [`{"v":1,"f":"${'x'.repeat(600)}","i":"d","q":0}\n{}`, 'no header line'],
    ]
    for (const [text, reason] of cases) expect(decodeEnvelope(body(text))).toBe(reason)
  })
})

describe('backplane outbox', () => {
  const entry = (n: number, bytes = 10, at = n) => ({
    instance: 'default',
    body: new Uint8Array(bytes),
    subscribers: ['P'],
    at,
  })

  it('keeps the newest within its message and byte bounds, counting what it drops', () => {
    const outbox = new Outbox(() => ({ buffer: 3, bufferBytes: 1000 }))
    for (let n = 0; n < 5; n++) outbox.push(entry(n))
    expect(outbox.length).toBe(3)
    expect(outbox.dropped).toBe(2)
    expect(outbox.shift()?.at).toBe(2)
    const bytes = new Outbox(() => ({ buffer: 100, bufferBytes: 25 }))
    for (let n = 0; n < 4; n++) bytes.push(entry(n))
    expect([bytes.length, bytes.bytes, bytes.dropped]).toEqual([2, 20, 2])
    // A message larger than the whole byte budget is not kept at all.
    bytes.push(entry(9, 30))
    expect([bytes.length, bytes.bytes]).toEqual([0, 0])
  })

  it('puts a failed publish back first and drops what is too old to publish', () => {
    const outbox = new Outbox(() => ({ buffer: 10, bufferBytes: 1000 }))
    for (let n = 1; n <= 3; n++) outbox.push(entry(n, 10, n * 100))
    const first = outbox.shift()
    outbox.unshift(first as ReturnType<typeof entry>)
    expect(outbox.expire(250)).toBe(2)
    expect(outbox.shift()?.at).toBe(300)
    expect(outbox.dropped).toBe(2)
  })
})

/** A broker that records subscribe/unsubscribe commands and can be made to fail. */
class RecordingBroker implements Broker {
  readonly commands: string[] = []
  failing = false
  async connect() {}
  async publish() {
    return 'fake'
  }
  async append() {}
  async trim() {}
  async range(): Promise<StreamEntry[]> {
    return []
  }
  async subscribe(channels: readonly string[]) {
    if (this.failing) throw new Error('not connected')
    this.commands.push(`SUBSCRIBE ${channels.join(' ')}`)
  }
  async unsubscribe(channels: readonly string[]) {
    if (this.failing) throw new Error('not connected')
    this.commands.push(`UNSUBSCRIBE ${channels.join(' ')}`)
  }
  async claim(_key: string, value: string) {
    return value
  }
  async time() {
    return 0
  }
  async close() {}
}

describe('backplane interest', () => {
  function setup() {
    const time = new FakeTime()
    const broker = new RecordingBroker()
    const failures: string[] = []
    const interest = new Interest({
      broker,
      clock: time,
      scheduler: microScheduler,
      timers: time,
      lingerMs: 5000,
      lingerMax: 3,
      failed: (reason) => failures.push(reason),
    })
    interest.up()
    return { time, broker, interest, failures }
  }

  it('subscribes once per turn for many sockets, and unsubscribes after the linger', async () => {
    const { time, broker, interest } = setup()
    for (let i = 0; i < 3; i++) interest.add('a')
    interest.add('b')
    await settle()
    expect(broker.commands).toEqual(['SUBSCRIBE a b'])
    expect(interest.coverage(['a', 'b'])).toBe(time.now())
    interest.remove('a')
    interest.remove('a')
    interest.remove('b')
    await time.advance(4999)
    // A page reload: the socket is back within the linger, nothing goes to the broker.
    interest.add('b')
    await time.advance(10_000)
    expect(broker.commands).toEqual(['SUBSCRIBE a b'])
    interest.remove('a')
    await time.advance(5000)
    expect(broker.commands).toEqual(['SUBSCRIBE a b', 'UNSUBSCRIBE a'])
    expect(interest.size).toBe(1)
  })

  it('lets at most lingerMax channels linger: past it the longest-lingering goes at once', async () => {
    const { time, broker, interest } = setup()
    // A client that subscribes to new ids and drops them again, over and over.
    for (const channel of ['a', 'b', 'c', 'd', 'e']) interest.add(channel)
    await settle()
    for (const channel of ['a', 'b', 'c', 'd', 'e']) interest.remove(channel)
    await settle()
    expect(broker.commands).toEqual(['SUBSCRIBE a b c d e', 'UNSUBSCRIBE a b'])
    expect(interest.size).toBe(3)
    // One of those still lingering is needed again: it stays, and leaves room for another.
    interest.add('d')
    interest.remove('d')
    await time.advance(5000)
    // The rest when their linger ends, in one command, d last (its linger began again).
    expect(broker.commands.slice(2)).toEqual(['UNSUBSCRIBE c e d'])
    expect(interest.size).toBe(0)
  })

  it('covers a channel only from its acknowledgement, and nothing while the broker is down', async () => {
    const { time, broker, interest, failures } = setup()
    interest.add('a')
    expect(interest.coverage(['a'])).toBeUndefined()
    const ready = interest.ready(['a'], 1000)
    await settle()
    await ready
    const since = time.now()
    expect(interest.coverage(['a'])).toBe(since)
    interest.down()
    expect(interest.coverage(['a'])).toBeUndefined()
    await time.advance(2000)
    interest.up()
    expect(interest.coverage(['a'])).toBe(since + 2000)
    // A subscribe that fails is tried again a second later, not in a loop.
    broker.failing = true
    interest.add('c')
    await settle()
    expect(failures).toEqual(['not connected'])
    broker.failing = false
    await time.advance(999)
    expect(broker.commands).toEqual(['SUBSCRIBE a'])
    await time.advance(1)
    expect(broker.commands).toEqual(['SUBSCRIBE a', 'SUBSCRIBE c'])
    // Waiting for a channel nobody asked for ends, with a reason.
    const never = interest.ready(['never'], 500).then(
      () => 'ready',
      (error: Error) => error.message
    )
    await time.advance(500)
    expect(await never).toBe('not subscribed within 500 ms')
  })
})

describe('backplane names', () => {
  it('tags every name of an instance alike, and each subscriber channel by its id', () => {
    const names = brokerNames('t:')
    expect(names.instanceChannel('phorge')).toBe('t:{i:phorge}:m')
    expect(names.stream('phorge')).toBe('t:{i:phorge}:h')
    expect(names.epoch('phorge')).toBe('t:{i:phorge}:e')
    expect(names.subscriberChannel('phorge', 'PHID-USER-1')).toBe('t:{s:phorge:PHID-USER-1}')
  })
})
