/**
 * Reading and checking an admin POST body: bounded in bytes before it is buffered whole,
 * strict UTF-8, a JSON object nested no deeper than `limits.bodyDepth` (so it can be
 * serialised again), with an array `subscribers`, if present an array `touched` of strings
 * and a usable `uniqueID`. Anything else is a RequestError with a stable code, thrown before
 * the message changes any state.
 */
import { RequestError } from '../errors.ts'
import { MAX_UNIQUE_ID_LENGTH, uniqueIdOf } from '../relay/envelope.ts'

/** A POSTed message, checked. `value` is the parsed object, passed through opaquely. */
export interface AdminMessage {
  value: Record<string, unknown>
  /** `subscribers` as strings, for matching. */
  subscribers: string[]
  /** `touched` as posted (empty when absent). */
  touched: string[]
  /** `uniqueID` as a string, or undefined when the message has none. */
  uniqueId: string | undefined
  /** True when `uniqueId` was drawn here, not posted (src/admin/publish.ts). */
  drawn?: boolean
}

// ignoreBOM is the default; spelled out because workerd's types require it.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

function tooLarge(limit: number): RequestError {
  return new RequestError(
    'body_too_large',
    413,
    `Request body is larger than the limit of ${limit} bytes.`
  )
}

/** The client went away mid-body: its mistake (or its network's), not a server error. */
function incomplete(): RequestError {
  return new RequestError(
    'body_incomplete',
    400,
    'Request body ended before it was complete (the client went away).'
  )
}

/** Reads at most `limit` bytes of `request`'s body, refusing larger bodies without buffering them. */
export async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get('content-length')
  if (declared !== null && !request.headers.has('transfer-encoding')) {
    const length = Number(declared)
    if (length > limit) throw tooLarge(limit)
    // A declared length frames the body exactly, so it cannot outgrow the check above and can
    // be read whole. (On Node, @hono/node-server then reads it straight from the socket
    // instead of through a web stream, which was most of an admin POST's cost.)
    if (Number.isSafeInteger(length) && length >= 0) {
      try {
        return new Uint8Array(await request.arrayBuffer())
      } catch {
        throw incomplete()
      }
    }
  }
  if (!request.body) return new Uint8Array(0)
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    let read: ReadableStreamReadResult<Uint8Array>
    try {
      read = await reader.read()
    } catch {
      throw incomplete()
    }
    const { done, value } = read
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel().catch(() => {})
      throw tooLarge(limit)
    }
    chunks.push(value)
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array
  const body = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    body.set(chunk, offset)
    offset += chunk.byteLength
  }
  return body
}

function readSubscribers(value: unknown): string[] {
  if (!Array.isArray(value)) {
    throw new RequestError('subscribers_invalid', 400, 'Field "subscribers" must be a list of ids.')
  }
  return value.map((item, index) => {
    if (typeof item === 'string') return item
    if (typeof item === 'number' && Number.isFinite(item)) return String(item)
    throw new RequestError(
      'subscribers_invalid',
      400,
      `Field "subscribers[${index}]" must be a string id, got ${item === null ? 'null' : typeof item}.`
    )
  })
}

function readTouched(value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new RequestError(
      'touched_invalid',
      400,
      'Field "touched" must be a list of fingerprint strings.'
    )
  }
  return value
}

/** True when `value` nests arrays and objects deeper than `limit` (the top level is 1). */
export function deeperThan(value: unknown, limit: number): boolean {
  if (value === null || typeof value !== 'object') return false
  const stack: [unknown, number][] = [[value, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number]
    if (depth > limit) return true
    const children = Array.isArray(node) ? node : Object.values(node as object)
    for (const child of children) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1])
    }
  }
  return false
}

function readUniqueId(value: unknown): string | undefined {
  const id = uniqueIdOf(value)
  if (id === false) {
    throw new RequestError(
      'unique_id_invalid',
      400,
      `Field "uniqueID" must be a non-empty string of at most ${MAX_UNIQUE_ID_LENGTH} characters (or be left out).`
    )
  }
  return id
}

/** Decodes and checks a POST body; `depth` is the deepest nesting allowed. */
export function parseMessage(body: Uint8Array, depth = 32): AdminMessage {
  let text: string
  try {
    text = decoder.decode(body)
  } catch {
    throw new RequestError('body_not_utf8', 400, 'Request body is not valid UTF-8.')
  }
  if (text.trim() === '') {
    throw new RequestError('body_not_json', 400, 'Request body is empty; expected a JSON object.')
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new RequestError(
      'body_not_json',
      400,
      `Request body is not valid JSON: ${(error as Error).message}`
    )
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new RequestError('body_not_object', 400, 'Request body must be a JSON object.')
  }
  if (deeperThan(value, depth)) {
    throw new RequestError(
      'body_too_deep',
      400,
      `Request body nests arrays and objects deeper than the limit of ${depth} levels ("limits.bodyDepth").`
    )
  }
  const object = value as Record<string, unknown>
  return {
    value: object,
    subscribers: readSubscribers(object.subscribers),
    touched: readTouched(object.touched),
    uniqueId: readUniqueId(object.uniqueID),
  }
}
