/**
 * What the publisher hears when a POST went to every shard of an instance: shard 0's receipt
 * when every shard took the message, otherwise the first shard's refusal (or a 503 for a shard
 * that could not be reached) — as from a single node, never a 200 that hides a lost delivery.
 */
import { RequestError } from '../../src/errors.ts'

export function publishReply(replies: readonly PromiseSettledResult<Response>[]): Response {
  for (const reply of replies) {
    if (reply.status === 'fulfilled') {
      if (reply.value.status !== 200) return reply.value
      continue
    }
    const why = reply.reason instanceof Error ? reply.reason.message : String(reply.reason)
    const message = `A shard of this instance did not take the message (${why}); retry.`
    return new RequestError('unavailable', 503, message, 1).toResponse()
  }
  const first = replies[0]
  if (first?.status !== 'fulfilled') throw new Error('publishReply needs at least one reply')
  return first.value
}
