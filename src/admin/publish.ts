/**
 * Everything about a publish (`POST /?instance=`) that needs no hub: the instance name, the
 * body's bounds and checks, and the message's `uniqueID` (drawn here when it has none). The
 * admin app runs it before ingest; the Worker entry runs it once before handing the message
 * to every shard, so a bad POST is refused once and every shard knows the message by the
 * same id.
 */
import { RequestError } from '../errors.ts'
import { generateUniqueId } from '../fingerprint.ts'
import { instanceFromQuery, isValidInstance } from '../instance-name.ts'
import { type AdminMessage, parseMessage, readBody } from './body.ts'

export interface Publish {
  instance: string
  message: AdminMessage
  /** The body to hand on: as posted, or re-serialised when a `uniqueID` was added. */
  body(): Uint8Array
}

/** The instance an admin request names in `?instance=`; a RequestError when it is unusable. */
export function adminInstance(query: string | undefined): string {
  const instance = instanceFromQuery(query)
  if (!isValidInstance(instance)) {
    throw new RequestError(
      'instance_invalid',
      400,
      'Query parameter "instance" must be 1-128 characters of A-Z a-z 0-9 . _ : @ -.'
    )
  }
  return instance
}

/** Gives a message without a `uniqueID` a random one. Returns whether it added one. */
export function ensureUniqueId(message: AdminMessage): boolean {
  if (message.uniqueId !== undefined) return false
  message.uniqueId = generateUniqueId()
  message.value.uniqueID = message.uniqueId
  message.drawn = true
  return true
}

const encoder = new TextEncoder()

/** Reads and checks a publish request. @throws RequestError with a stable code. */
export async function readPublish(
  request: Request,
  instanceQuery: string | undefined,
  limits: { bodyBytes: number; bodyDepth: number }
): Promise<Publish> {
  const instance = adminInstance(instanceQuery)
  const posted = await readBody(request, limits.bodyBytes)
  const message = parseMessage(posted, limits.bodyDepth)
  const added = ensureUniqueId(message)
  return {
    instance,
    message,
    body: () => (added ? encoder.encode(JSON.stringify(message.value)) : posted),
  }
}
