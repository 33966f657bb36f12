/**
 * Properties of the admin port's input handling: any bytes as a POST body, with any
 * instance and headers, get a coded 200/400/413 (never a 500 or a throw), count exactly
 * the accepted messages, and never touch Object.prototype.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseMessage } from '../../src/admin/body.ts'
import { RequestError } from '../../src/errors.ts'
import { testNode } from '../helpers/fakes.ts'
import { PROPERTY_RUNS, SEED } from './seed.ts'

const CODES = new Set([
  'body_too_large',
  'body_not_utf8',
  'body_not_json',
  'body_not_object',
  'subscribers_invalid',
  'touched_invalid',
  'unique_id_invalid',
  'body_too_deep',
  'instance_invalid',
])

const encoder = new TextEncoder()

/** Message-shaped JSON with any values in it (deep ones too, and dangerous keys). */
const messageLike = fc
  .record(
    {
      subscribers: fc.oneof(
        fc.array(fc.oneof(fc.string(), fc.integer(), fc.double()), { maxLength: 5 }),
        fc.anything()
      ),
      touched: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), fc.anything()),
      uniqueID: fc.oneof(fc.string(), fc.anything()),
      key: fc.oneof(
        fc.anything(),
        fc
          .integer({ min: 1, max: 80 })
          .map((depth) => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`))
      ),
      constructor: fc.anything(),
    },
    { requiredKeys: [] }
  )
  .map((value) => JSON.stringify(value))
  .map((text) => text.replace('"constructor"', '"__proto__"'))

const mutate = (text: string, edits: [number, number][]): Uint8Array => {
  const bytes = [...encoder.encode(text)]
  for (const [at, value] of edits) {
    const i = at % (bytes.length + 1)
    if (value % 3 === 0) bytes.splice(i, 1)
    else if (value % 3 === 1) bytes.splice(i, 0, value)
    else bytes[i] = value
  }
  return new Uint8Array(bytes)
}

const body = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  messageLike.map((text) => encoder.encode(text)),
  fc
    .tuple(messageLike, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }))
    .map(([text, edits]) => mutate(text, edits)),
  fc.jsonValue().map((value) => encoder.encode(JSON.stringify(value)))
)

const instance = fc.oneof(
  fc.constantFrom(undefined, '', 'default', 'a', '__proto__', 'x'.repeat(129), 'a b', '../x'),
  fc.string({ maxLength: 12 })
)

const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded'
)

describe('admin app (properties)', () => {
  it('parseMessage returns a checked message or throws a RequestError, for any bytes', () => {
    fc.assert(
      fc.property(body, (bytes) => {
        try {
          const message = parseMessage(bytes)
          expect(Array.isArray(message.subscribers)).toBe(true)
          for (const id of message.subscribers) expect(typeof id).toBe('string')
          for (const id of message.touched) expect(typeof id).toBe('string')
        } catch (error) {
          expect(error).toBeInstanceOf(RequestError)
          expect(CODES.has((error as RequestError).code)).toBe(true)
        }
      }),
      { seed: SEED, numRuns: PROPERTY_RUNS * 3 }
    )
  })

  it('answers any POST with 200 or a coded 400/413, and counts exactly the accepted ones', async () => {
    const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort()
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(body, instance, contentType), { minLength: 1, maxLength: 8 }),
        async (posts) => {
          const { tidings, app, logger } = testNode({ limits: { bodyBytes: 200 } })
          const accepted = new Map<string, number>()
          for (const [bytes, name, type] of posts) {
            const query = name === undefined ? '' : `?instance=${encodeURIComponent(name)}`
            const headers: Record<string, string> = type ? { 'content-type': type } : {}
            const response = await app.request(`/${query}`, {
              method: 'POST',
              body: bytes as Uint8Array<ArrayBuffer>,
              headers,
            })
            const json = (await response.json()) as Record<string, unknown>
            if (response.status === 200) {
              expect(json).toEqual({ fingerprint: tidings.fingerprint })
              const key = name || 'default'
              accepted.set(key, (accepted.get(key) ?? 0) + 1)
            } else {
              expect([400, 413]).toContain(response.status)
              const error = json.error as { code: string; message: string }
              expect(CODES.has(error.code)).toBe(true)
              expect(error.message).not.toMatch(/\n\s+at /)
            }
          }
          for (const [name, count] of accepted) {
            expect(tidings.status(name)['messages.in']).toBe(count)
          }
          expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys)
          for (const line of logger.lines) expect(line).not.toMatch(/Internal Server Error/)
        }
      ),
      { seed: SEED, numRuns: PROPERTY_RUNS }
    )
  })
})
