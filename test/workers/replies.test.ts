/** What a publisher hears from a sharded instance (adapters/workers/replies.ts). */
import { describe, expect, it } from 'vitest'
import { publishReply } from '../../adapters/workers/replies.ts'

const ok = (body = '{"fingerprint":"F"}') =>
  ({ status: 'fulfilled', value: new Response(body, { status: 200 }) }) as const
const refused = (status: number) =>
  ({
    status: 'fulfilled',
    value: Response.json({ error: { code: 'overloaded' } }, { status }),
  }) as const
const lost = { status: 'rejected', reason: new Error('the object was reset') } as const

describe('workers adapter: replies of a sharded publish', () => {
  it("answers shard 0's receipt when every shard took the message", async () => {
    const reply = publishReply([ok('{"fingerprint":"F0"}'), ok('{"fingerprint":"F1"}')])
    expect(reply.status).toBe(200)
    expect(await reply.json()).toEqual({ fingerprint: 'F0' })
  })

  it("passes on a refusal from any shard, not only shard 0's", async () => {
    const reply = publishReply([ok(), ok(), refused(503)])
    expect(reply.status).toBe(503)
    expect(await reply.json()).toEqual({ error: { code: 'overloaded' } })
  })

  it('answers 503 unavailable, with Retry-After, for a shard that could not be reached', async () => {
    const reply = publishReply([ok(), lost])
    expect(reply.status).toBe(503)
    expect(reply.headers.get('retry-after')).toBe('1')
    const body = (await reply.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('unavailable')
    expect(body.error.message).toContain('the object was reset')
  })
})
