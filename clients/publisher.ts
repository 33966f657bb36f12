/**
 * `tidings/publisher`: posts a message to one of several tidings (or Aphlict) admin servers,
 * as Phorge's PHP does: add a `uniqueID`, shuffle the servers, try each in turn until one
 * answers 200. One server is enough: the cluster relay delivers everywhere.
 *
 * Web standards only (`fetch`, `AbortController`, `crypto.getRandomValues`), so it runs on
 * Node 20+, Cloudflare Workers, Deno and in browsers.
 */
import { invalidOption, TidingsClientError } from './errors.ts'
import type { TidingsMessage } from './message.ts'

export type { ClientErrorCode } from './errors.ts'
export { TidingsClientError } from './errors.ts'
export type { TidingsMessage } from './message.ts'

/** Header carrying the shared secret, when the servers require one. */
export const SECRET_HEADER = 'X-Tidings-Secret'

export interface PublisherOptions {
  /** Admin server base URLs, e.g. `http://127.0.0.1:22281` (a path prefix is kept). */
  servers: readonly string[]
  /** Sent as `?instance=`; the server's `default` instance when omitted. */
  instance?: string | undefined
  /** Per-server limit for the whole request, answer included. @default 2000 */
  timeoutMs?: number | undefined
  /** Shared secret, sent as the `X-Tidings-Secret` header. */
  secret?: string | undefined
  /** `fetch` to use (tests, custom agents). @default globalThis.fetch */
  fetch?: typeof fetch | undefined
  /** Source of randomness for the shuffle, in [0, 1). @default Math.random */
  random?: (() => number) | undefined
}

/** Why one server did not take the message. */
export interface ServerFailure {
  /** The server as given in `servers`. */
  server: string
  /** `timeout`: no answer in `timeoutMs`; `network`: no connection; `status`: answered, not 200. */
  kind: 'timeout' | 'network' | 'status'
  /** HTTP status, for `kind: 'status'`. */
  status?: number
  /** The server's error code (`{"error":{"code"}}`), when it sent one. */
  code?: string
  /** Human-readable reason. */
  reason: string
}

export interface PublishResult {
  /** The server (as given in `servers`) that answered 200. */
  server: string
  /** That server's fingerprint, from its receipt. */
  fingerprint: string | undefined
  /** The message's `uniqueID` (the one given, or the one added). */
  uniqueID: string
  /** Servers tried before it, and why each failed. */
  failures: ServerFailure[]
}

export interface PublishOptions {
  /** Aborts the whole publish; the promise rejects with the signal's reason. */
  signal?: AbortSignal | undefined
}

/** `publish` failed: `all_servers_failed`, `message_rejected` or `message_invalid`. */
export class PublishError extends TidingsClientError {
  override readonly name = 'PublishError'
  constructor(
    code: 'all_servers_failed' | 'message_rejected' | 'message_invalid',
    message: string,
    /** Per-server reasons, in the order the servers were tried. */
    readonly failures: readonly ServerFailure[] = []
  ) {
    super(code, message)
  }
}

export interface Publisher {
  /** The admin servers, as given. */
  readonly servers: readonly string[]
  /** Publishes `message` through the first server (in random order) that answers 200. */
  publish(message: TidingsMessage, options?: PublishOptions): Promise<PublishResult>
}

/** Phorge's `Filesystem::readRandomCharacters` alphabet: 32 symbols, 5 bits each. */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'

/** 32 random characters from [a-z2-7], like the `uniqueID` Phorge adds. */
export function randomUniqueId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32))
  let id = ''
  for (const byte of bytes) id += ALPHABET[byte >> 3]
  return id
}

function endpoint(server: string, index: number, instance: string | undefined): string {
  const field = `servers[${index}]`
  if (typeof server !== 'string') invalidOption(field, 'must be a URL string.')
  let url: URL
  try {
    url = new URL(server)
  } catch {
    return invalidOption(field, `is not a URL: "${server}".`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    invalidOption(field, `must be an http:// or https:// URL, got "${server}".`)
  }
  if (url.search || url.hash) {
    invalidOption(field, 'must not have a query or fragment (use the "instance" option).')
  }
  const base = url.href.endsWith('/') ? url.href : `${url.href}/`
  return instance === undefined ? base : `${base}?instance=${encodeURIComponent(instance)}`
}

function checkOptions(options: PublisherOptions): void {
  if (options === null || typeof options !== 'object')
    invalidOption('options', 'must be an object.')
  if (!Array.isArray(options.servers) || options.servers.length === 0) {
    invalidOption('servers', 'must be a non-empty list of admin server URLs.')
  }
  const { instance, timeoutMs, secret } = options
  if (instance !== undefined && (typeof instance !== 'string' || instance === '')) {
    invalidOption('instance', 'must be a non-empty string.')
  }
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0)) {
    invalidOption('timeoutMs', 'must be a positive number of milliseconds.')
  }
  if (secret !== undefined && (typeof secret !== 'string' || secret === '')) {
    invalidOption('secret', 'must be a non-empty string.')
  }
}

/** The JSON body, with a `uniqueID` added (last, as Phorge adds it) when absent. */
function encode(message: TidingsMessage): { body: string; uniqueID: string } {
  const invalid = (why: string): never => {
    throw new PublishError('message_invalid', `Message ${why}`)
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    invalid('must be an object.')
  }
  const { subscribers, uniqueID } = message
  if (
    !Array.isArray(subscribers) ||
    !subscribers.every(
      (id) => typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))
    )
  ) {
    invalid('field "subscribers" must be a list of string ids.')
  }
  if (uniqueID !== undefined && (typeof uniqueID !== 'string' || uniqueID === '')) {
    invalid('field "uniqueID" must be a non-empty string when given.')
  }
  const id = uniqueID ?? randomUniqueId()
  try {
    return { body: JSON.stringify(uniqueID ? message : { ...message, uniqueID: id }), uniqueID: id }
  } catch (error) {
    return invalid(`cannot be serialised as JSON: ${(error as Error).message}`)
  }
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** The innermost message of a fetch error: undici wraps ECONNREFUSED in `cause`. */
function networkReason(error: unknown): string {
  let reason = error instanceof Error ? error.message : String(error)
  let cause = error instanceof Error ? error.cause : undefined
  while (cause instanceof Error) {
    reason = cause.message || reason
    cause = cause.cause
  }
  return reason
}

type Attempt = { fingerprint: string | undefined } | { failure: ServerFailure }

export function createPublisher(options: PublisherOptions): Publisher {
  checkOptions(options)
  const servers = [...options.servers]
  const targets = servers.map((server, index) => ({
    server,
    url: endpoint(server, index, options.instance),
  }))
  const timeoutMs = options.timeoutMs ?? 2000
  const random = options.random ?? Math.random
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (options.secret !== undefined) headers[SECRET_HEADER] = options.secret

  async function attempt(
    target: { server: string; url: string },
    body: string,
    signal: AbortSignal | undefined
  ): Promise<Attempt> {
    const fetchFn = options.fetch ?? globalThis.fetch
    const controller = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort()
    }, timeoutMs)
    const onAbort = (): void => controller.abort(signal?.reason)
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const response = await fetchFn(target.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual', // as Phorge: a redirect is a failure, never followed
        signal: controller.signal,
      })
      const text = await response.text()
      const json = parseJson(text) as { fingerprint?: unknown; error?: Record<string, unknown> }
      if (response.status === 200) {
        const fingerprint = typeof json?.fingerprint === 'string' ? json.fingerprint : undefined
        return { fingerprint }
      }
      const code = typeof json?.error?.code === 'string' ? json.error.code : undefined
      const detail =
        typeof json?.error?.message === 'string' ? json.error.message : text.trim().slice(0, 200)
      const failure: ServerFailure = {
        server: target.server,
        kind: 'status',
        status: response.status,
        reason: `answered ${response.status}${detail ? `: ${detail}` : ''}`,
      }
      if (code !== undefined) failure.code = code
      return { failure }
    } catch (error) {
      if (signal?.aborted) throw signal.reason
      return {
        failure: timedOut
          ? { server: target.server, kind: 'timeout', reason: `no answer within ${timeoutMs} ms` }
          : { server: target.server, kind: 'network', reason: networkReason(error) },
      }
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  }

  return {
    servers,
    async publish(message, publishOptions = {}) {
      const { body, uniqueID } = encode(message)
      const { signal } = publishOptions
      signal?.throwIfAborted()
      const failures: ServerFailure[] = []
      for (const target of shuffled(targets, random)) {
        const result = await attempt(target, body, signal)
        if ('fingerprint' in result) {
          return { server: target.server, fingerprint: result.fingerprint, uniqueID, failures }
        }
        failures.push(result.failure)
        const { status } = result.failure
        if (status === 400 || status === 413) {
          // The message itself was refused: every server would refuse it the same way.
          throw new PublishError(
            'message_rejected',
            `${target.server} refused the message: ${result.failure.reason}`,
            failures
          )
        }
      }
      const reasons = failures.map((failure) => `${failure.server}: ${failure.reason}`).join('; ')
      throw new PublishError(
        'all_servers_failed',
        `No admin server took the message (${reasons}).`,
        failures
      )
    },
  }
}
