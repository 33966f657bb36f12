/** A mistake on the command line; printed without a stack trace, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}
