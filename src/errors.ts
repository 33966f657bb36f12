/**
 * Errors with stable codes. Admin responses carry them as
 * `{"error":{"code":"…","message":"…"}}`; the CLI prints `message` only.
 */

export type ErrorCode =
  | 'body_too_large'
  | 'body_incomplete'
  | 'body_not_utf8'
  | 'body_not_json'
  | 'body_not_object'
  | 'subscribers_invalid'
  | 'touched_invalid'
  | 'instance_invalid'
  | 'unauthorized'
  | 'overloaded'
  | 'internal_error'

/** A client mistake on the admin port, answered with `status` and never logged as a crash. */
export class RequestError extends Error {
  override readonly name = 'RequestError'
  constructor(
    readonly code: ErrorCode,
    readonly status: 400 | 401 | 413 | 500 | 503,
    message: string
  ) {
    super(message)
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } }
  }
}

/** A configuration file that cannot be used; `message` names the field and index. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly code = 'config_invalid'
}
