/**
 * Reading and checking an admin POST body: bounded in bytes before it is buffered whole,
 * strict UTF-8, and a JSON object with an array `subscribers` (and, if present, an array
 * `touched` of strings). Anything else is a RequestError with a stable code.
 */
import { RequestError } from '../errors.ts'

/** A POSTed message, checked. `value` is the parsed object, passed through opaquely. */
export interface AdminMessage {
  value: Record<string, unknown>
  /** `subscribers` as strings, for matching. */
  subscribers: string[]
  /** `touched` as posted (empty when absent). */
  touched: string[]
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

/** Decodes and checks a POST body. */
export function parseMessage(body: Uint8Array): AdminMessage {
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
  const object = value as Record<string, unknown>
  return {
    value: object,
    subscribers: readSubscribers(object.subscribers),
    touched: readTouched(object.touched),
  }
}
