/**
 * The shared secret on admin and relay requests. An edge endpoint is public, so every admin
 * request (status included) must carry the deployment's secret in `X-Tidings-Secret`, the
 * header cluster peers send; only a deployment explicitly configured open
 * (TIDINGS_INSECURE_OPEN=1, local development) skips this.
 */
import { RequestError } from '../../src/errors.ts'
import { SECRET_HEADER, secretMatches } from '../../src/relay/secret.ts'

export { SECRET_HEADER }

/** Undefined when `request` may use the admin port; the error to answer otherwise. */
export async function checkSecret(
  request: Request,
  secret: string | undefined,
  open: boolean
): Promise<RequestError | undefined> {
  if (open) return undefined
  if (secret === undefined) {
    return new RequestError(
      'unauthorized',
      401,
      'This deployment has no TIDINGS_SECRET, so it accepts no admin requests; set one with "wrangler secret put TIDINGS_SECRET".'
    )
  }
  const given = request.headers.get(SECRET_HEADER)
  if (given === null) {
    return new RequestError(
      'unauthorized',
      401,
      'Admin requests need the deployment secret in the "X-Tidings-Secret" header.'
    )
  }
  if (!(await secretMatches(given, secret))) {
    return new RequestError(
      'unauthorized',
      401,
      'The "X-Tidings-Secret" header does not match this deployment\'s TIDINGS_SECRET.'
    )
  }
  return undefined
}
