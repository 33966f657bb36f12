/** Errors the client libraries throw, each with a stable `code`. Web standards only. */

export type ClientErrorCode =
  /** An option passed to `createPublisher` or `createClient` is unusable; the message names it. */
  | 'options_invalid'
  /** The message given to `publish` is not a message (e.g. `subscribers` is not a list of ids). */
  | 'message_invalid'
  /** A server refused the message itself (400 or 413); every server would, so no other was tried. */
  | 'message_rejected'
  /** No admin server answered 200; `failures` says why, per server. */
  | 'all_servers_failed'

export class TidingsClientError extends Error {
  override readonly name: string = 'TidingsClientError'
  constructor(
    readonly code: ClientErrorCode,
    message: string
  ) {
    super(message)
  }
}

/** Throws `options_invalid` naming `field`. */
export function invalidOption(field: string, why: string): never {
  throw new TidingsClientError('options_invalid', `Option "${field}" ${why}`)
}
