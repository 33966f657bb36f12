/**
 * What the fuzzer throws: client frames (valid, mutated, random, hostile JSON, oversized,
 * invalid UTF-8) and admin requests (bodies, queries, methods, headers), all from a seeded
 * Random, with what each one may legitimately cause.
 */
import { mutate, type Random } from './random.ts'

export const ID_POOL = Array.from({ length: 20 }, (_, i) => `PHID-FUZZ-${i}`)

export interface FuzzFrame {
  data: Buffer
  binary: boolean
  /** What closing the connection this frame may cause: 1007, 1008 or 1009. */
  mayClose?: 1007 | 1008 | 1009
}

const encode = (value: unknown): Buffer => Buffer.from(JSON.stringify(value))

function ids(random: Random, max = 5): unknown[] {
  return Array.from({ length: random.int(max + 1) }, () =>
    random.chance(0.9)
      ? random.pick(ID_POOL)
      : random.pick([7, -1, 1e21, '', '__proto__', 'x'.repeat(250)])
  )
}

function validFrame(random: Random): Buffer {
  switch (random.int(4)) {
    case 0:
      return encode({ command: 'subscribe', data: ids(random) })
    case 1:
      return encode({ command: 'unsubscribe', data: ids(random) })
    case 2:
      return encode({
        command: 'replay',
        data: { age: random.pick([0, 1, 1000, 60_000, -5, 1e308, '100', null]) },
      })
    default:
      return encode({ command: 'ping', data: null })
  }
}

function hostileFrame(random: Random): Buffer {
  switch (random.int(9)) {
    case 0:
      return Buffer.from('['.repeat(1 + random.int(20_000)))
    case 1:
      return Buffer.from(`${'{"a":'.repeat(1 + random.int(5000))}1${'}'.repeat(random.int(5000))}`)
    case 2:
      return Buffer.from(
        '{"__proto__":{"command":"ping"},"constructor":{"prototype":{"x":1}},"command":"subscribe","data":["__proto__","constructor"]}'
      )
    case 3:
      return encode({
        command: 'subscribe',
        data: Array.from({ length: 1 + random.int(200) }, (_, i) => i),
      })
    case 4:
      return Buffer.from('{"command":"ping","command":"subscribe","data":[1e999]}')
    case 5:
      // Mostly within limits.idBytes (256), sometimes far past it (a 1008 close).
      return encode({
        command: 'subscribe',
        data: ['x'.repeat(1 + random.int(random.chance(0.9) ? 256 : 10_000))],
      })
    case 6:
      return Buffer.from(
        `{"command":"replay","data":{"age":${random.pick(['1e400', '-1e400', 'NaN', '0x10', '1'])}}}`
      )
    case 7:
      return encode({
        command: random.pick(['toString', 'hasOwnProperty', 'Ping', ' ping', 'ping\u0000']),
        data: {},
      })
    default:
      return encode(random.pick([null, [], 0, '', true, { command: null }, { data: ['a'] }]))
  }
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes)
    return true
  } catch {
    return false
  }
}

/** One client frame. `frameBytes` and `subscriptions` are the server's limits. */
export function makeFrame(random: Random, frameBytes: number, subscriptions: number): FuzzFrame {
  const roll = random.next()
  if (roll < 0.3) return { data: validFrame(random), binary: false }
  if (roll < 0.6) {
    const data = mutate(random, validFrame(random))
    // Invalid UTF-8 in a text frame closes the socket (1007); keep that rare, send the rest binary.
    return isUtf8(data) ? { data, binary: false } : { data, binary: true }
  }
  if (roll < 0.7) return { data: random.bytes(random.int(200)), binary: true }
  if (roll < 0.8) return { data: Buffer.from(random.text(random.int(100))), binary: false }
  if (roll < 0.994) return { data: hostileFrame(random), binary: false }
  if (roll < 0.996) {
    const data = Buffer.from('{"command":"subscribe","data":["\xff\xfe"]}', 'latin1')
    return { data, binary: false, mayClose: 1007 }
  }
  if (roll < 0.998) {
    const data = encode({
      command: 'subscribe',
      data: Array.from({ length: subscriptions + 1 }, (_, i) => `many-${i}`),
    })
    return { data, binary: false, mayClose: 1008 }
  }
  return {
    data: Buffer.alloc(frameBytes + 1 + random.int(1024), 0x20),
    binary: false,
    mayClose: 1009,
  }
}

/** True when the server answers this frame with a pong (it parses frames exactly so). */
export function isPing(frame: FuzzFrame): boolean {
  try {
    const value = JSON.parse(frame.data.toString('utf8')) as unknown
    return (
      value !== null &&
      typeof value === 'object' &&
      !Array.isArray(value) &&
      (value as { command?: unknown }).command === 'ping'
    )
  } catch {
    return false
  }
}

export interface FuzzRequest {
  method: string
  path: string
  /** The instance a 200 counts for, when this is a publish. */
  instance?: string
  headers: Record<string, string>
  body?: Buffer
  /** Statuses this request may get. */
  expect: number[]
  oversize?: boolean
}

export const POST_INSTANCES = ['default', 'fuzz1', 'fuzz2']

function message(random: Random): Record<string, unknown> {
  const value: Record<string, unknown> = {
    key: String(random.int(1e9)),
    type: random.pick(['notification', 'message', 'other']),
    subscribers: ids(random, 6),
  }
  if (random.chance(0.5)) value.uniqueID = `u-${random.int(50_000)}`
  if (random.chance(0.1)) value.touched = random.pick([[], ['abc']])
  if (random.chance(0.05)) value['tidings.origin'] = random.pick(['fp:1', 7, ''])
  return value
}

function hostileBody(random: Random): Buffer {
  switch (random.int(6)) {
    case 0:
      return Buffer.from(`{"subscribers":${'['.repeat(1 + random.int(5000))}`)
    case 1:
      return Buffer.from(
        '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"subscribers":["PHID-FUZZ-1"]}'
      )
    case 2:
      return encode({
        subscribers: Array.from({ length: 1 + random.int(500) }, (_, i) => `PHID-FUZZ-${i % 25}`),
      })
    case 3:
      return Buffer.from(
        random.pick([
          '{"subscribers":[1e999,NaN]}',
          '{"subscribers":[],"touched":[1]}',
          '{"subscribers":[],"touched":"x"}',
        ])
      )
    case 4:
      return Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('{"subscribers":[]}')])
    default:
      return Buffer.from(
        random.pick([
          '',
          ' ',
          'null',
          '[]',
          '""',
          '{}',
          '{"subscribers":{}}',
          '{"subscribers":"PHID"}',
        ])
      )
  }
}

function weirdInstance(random: Random): string {
  return random.pick([
    'x'.repeat(129),
    'a b',
    '../etc',
    'é',
    '%0d%0aInjected: 1',
    '__proto__',
    'constructor',
    `rnd-${random.int(1000)}`,
    // Well-formed (lone surrogates replaced), so it can be URI-encoded.
    Buffer.from(random.text(8)).toString(),
  ])
}

/** One admin request. `bodyBytes` is the server's POST limit. */
export function makeRequest(random: Random, bodyBytes: number): FuzzRequest {
  const headers: Record<string, string> = {}
  if (random.chance(0.7)) {
    headers['content-type'] = random.pick([
      'application/json',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=--x',
      '*/*;;;',
    ])
  }
  if (random.chance(0.1))
    headers['x-forwarded-for'] = random.pick([
      '203.0.113.9',
      'garbage, 1.2.3.4',
      '[fake log line]',
      '',
    ])
  const instance = random.pick(POST_INSTANCES)
  const publish = (body: Buffer): FuzzRequest => ({
    method: 'POST',
    path: instance === 'default' && random.chance(0.5) ? '/' : `/?instance=${instance}`,
    instance,
    headers,
    body,
    expect: [200, 400],
  })
  const roll = random.next()
  if (roll < 0.35) return { ...publish(encode(message(random))), expect: [200] }
  if (roll < 0.6) return publish(mutate(random, encode(message(random))))
  if (roll < 0.65) return publish(random.bytes(random.int(300)))
  if (roll < 0.8) return publish(hostileBody(random))
  if (roll < 0.83) {
    return {
      ...publish(Buffer.alloc(bodyBytes + 1 + random.int(4096), 0x20)),
      expect: [413],
      oversize: true,
    }
  }
  if (roll < 0.9) {
    const name = weirdInstance(random)
    const query = random.chance(0.5) ? encodeURIComponent(name) : name.replace(/[^\x21-\x7e]/g, '_')
    return {
      method: 'POST',
      path: `/?instance=${query}&instance=fuzz1&x=${random.int(9)}`,
      headers,
      body: encode(message(random)),
      expect: [200, 400],
    }
  }
  if (roll < 0.95) {
    return {
      method: random.pick(['GET', 'PUT', 'DELETE', 'PATCH']),
      path: '/',
      headers,
      expect: [405],
    }
  }
  if (roll < 0.98) {
    return {
      method: random.pick(['GET', 'POST']),
      path: random.pick(['/status', '/x', '/status/x', '/%00', '/~x/']),
      headers,
      expect: [404],
    }
  }
  return {
    method: 'GET',
    path: `/status/?instance=${encodeURIComponent(weirdInstance(random))}`,
    headers,
    expect: [200, 400],
  }
}
