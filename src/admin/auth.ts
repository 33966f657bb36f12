/**
 * Who may use the admin port: the one secret policy of every runtime. With a `secret`, a
 * request must carry it in `X-Tidings-Secret` (compared in constant time, never logged);
 * `trustLoopback` lets loopback peers (Phorge on the same host) through without it. Where the
 * admin port is public (an edge deployment), `required` refuses everything until a secret is
 * set, unless the deployment is explicitly `open` (local development).
 */
import { RequestError } from '../errors.ts'
import { isLoopbackAddress } from '../net/address.ts'
import { secretMatches } from '../relay/secret.ts'

export interface SecretPolicy {
  secret?: string | null | undefined
  /** Loopback requests need no secret (Phorge on this host cannot send the header). */
  trustLoopback?: boolean
  /** Refuse every request while no secret is set (a public admin endpoint). */
  required?: boolean
  /** Serve without a secret even when `required` (local development only). */
  open?: boolean
}

/**
 * Undefined when the request may proceed; otherwise the 401 to answer.
 * `remoteAddress` is the TCP peer, when the runtime knows it (for `trustLoopback`).
 */
export async function authorize(
  given: string | null,
  remoteAddress: string | undefined,
  policy: SecretPolicy
): Promise<RequestError | undefined> {
  const { secret } = policy
  if (policy.open) return undefined
  if (!secret) {
    if (!policy.required) return undefined
    return new RequestError(
      'unauthorized',
      401,
      'This server has no secret set, so it accepts no admin requests; set one (TIDINGS_SECRET on Workers: "wrangler secret put TIDINGS_SECRET").'
    )
  }
  if (policy.trustLoopback && isLoopbackAddress(remoteAddress)) return undefined
  if (given === null) {
    return new RequestError(
      'unauthorized',
      401,
      'This server requires the secret in the "X-Tidings-Secret" header (see "secret" in the configuration).'
    )
  }
  if (!(await secretMatches(given, secret))) {
    return new RequestError(
      'unauthorized',
      401,
      'The "X-Tidings-Secret" header does not match this server\'s secret.'
    )
  }
  return undefined
}
