/**
 * Errors with stable codes, one list for every port. Admin responses and refused client
 * upgrades carry them as `{"error":{"code":"…","message":"…"}}`; the CLI prints `message` only.
 */

export type ErrorCode =
  // Admin POST bodies
  | 'body_too_large'
  | 'body_incomplete'
  | 'body_not_utf8'
  | 'body_not_json'
  | 'body_not_object'
  | 'body_too_deep'
  | 'subscribers_invalid'
  | 'touched_invalid'
  | 'unique_id_invalid'
  | 'instance_invalid'
  | 'unauthorized'
  | 'overloaded'
  | 'too_many_instances'
  // Client upgrades
  | 'bad_request'
  | 'origin_not_allowed'
  | 'too_many_connections'
  | 'too_many_handshakes'
  | 'rate_limited'
  | 'at_capacity'
  | 'unavailable'
  | 'internal_error'
  | 'config_invalid'

export type ErrorStatus = 400 | 401 | 403 | 413 | 429 | 500 | 503

/** A client mistake or a refusal, answered with `status` and never logged as a crash. */
export class RequestError extends Error {
  override readonly name = 'RequestError'
  constructor(
    readonly code: ErrorCode,
    readonly status: ErrorStatus,
    message: string,
    /** Seconds, sent as `Retry-After` (429 and 503). */
    readonly retryAfter?: number
  ) {
    super(message)
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } }
  }

  /** The answer as a web Response (Workers, and anything else that speaks fetch). */
  toResponse(): Response {
    const headers: Record<string, string> = {}
    if (this.retryAfter !== undefined) headers['Retry-After'] = String(this.retryAfter)
    return Response.json(this.toJSON(), { status: this.status, headers })
  }
}

/** A configuration file that cannot be used; `message` names the field and index. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly code = 'config_invalid'
}
