/**
 * The admin port as a Hono app: `POST /?instance=` publishes, `/status/` reports.
 * Same routes on Node and Workers; the adapter only serves it.
 */
import { type Context, Hono } from 'hono'
import { RequestError } from '../errors.ts'
import { instanceFromQuery, isValidInstance } from '../instance.ts'
import { isLoopbackAddress } from '../net/address.ts'
import type { Logger } from '../ports.ts'
import { SECRET_HEADER, secretMatches } from '../relay/secret.ts'
import type { StatusBody, Tidings } from '../tidings.ts'
import { parseMessage, readBody } from './body.ts'
import { mountOpsRoutes, type OpsOptions } from './ops-routes.ts'

export interface AdminAppOptions {
  tidings: Tidings
  logger: Logger
  /** Largest accepted POST body in bytes. */
  bodyBytes: number
  /** Extra status keys (after Aphlict's), e.g. cluster peers. */
  statusExtras?: (status: StatusBody) => void
  /** When set, POSTs must carry it in `X-Tidings-Secret` (relays from peers do). */
  secret?: string | null | undefined
  /** Let POSTs from loopback addresses through without the secret (e.g. Phorge on this host). */
  trustLoopback?: boolean
  /** The request's remote address, when the runtime knows it (needed for trustLoopback). */
  remoteAddress?: (c: Context) => string | undefined
  /** Readiness, runtime metrics and peer health for /metrics, /readyz, /stats.json, /dashboard/. */
  ops?: OpsOptions
}

const UNAUTHORIZED = new RequestError(
  'unauthorized',
  401,
  'This admin server requires the cluster secret in the "X-Tidings-Secret" header (see "secret" in the configuration).'
)

async function checkSecret(options: AdminAppOptions, c: Context): Promise<void> {
  const { secret } = options
  if (!secret) return
  if (options.trustLoopback && isLoopbackAddress(options.remoteAddress?.(c))) return
  if (!(await secretMatches(c.req.header(SECRET_HEADER) ?? null, secret))) throw UNAUTHORIZED
}

function instanceOf(query: string | undefined): string {
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

export function createAdminApp(options: AdminAppOptions): Hono {
  const { tidings, logger } = options
  const app = new Hono()

  // Aphlict answers /status/ to any method (Phorge GETs it); the slash is required.
  app.all('/status/', (c) => {
    const status = tidings.status(instanceOf(c.req.query('instance')))
    options.statusExtras?.(status)
    return c.json(status)
  })

  app.post('/', async (c) => {
    await checkSecret(options, c)
    const { fanoutBacklog, bodyDepth } = tidings.options.config.limits
    if (tidings.hub.backlog > fanoutBacklog) {
      tidings.limited.fanoutBacklog++
      throw new RequestError(
        'overloaded',
        503,
        `More than ${fanoutBacklog} deliveries are waiting ("limits.fanoutBacklog"); retry shortly or post to another node.`,
        1
      )
    }
    const instance = instanceOf(c.req.query('instance'))
    const message = parseMessage(await readBody(c.req.raw, options.bodyBytes), bodyDepth)
    tidings.ingest(instance, message)
    return c.json({ fingerprint: tidings.fingerprint })
  })

  mountOpsRoutes(app, tidings, options.ops)

  app.all('/', (c) => c.body(null, 405))
  app.notFound((c) => c.body(null, 404))

  app.onError((error, c) => {
    if (error instanceof RequestError && error.status === 503) {
      // Counted in `limited` (and logged, rate-limited, where it was decided).
      if (logger.tracing) logger.trace(`Overloaded! ${error.message}`)
      c.header('Retry-After', String(error.retryAfter ?? 1))
      return c.json(error.toJSON(), 503)
    }
    if (error instanceof RequestError) {
      tidings.rejected.badBodies++
      if (error.code === 'body_too_large') tidings.limited.bodyBytes++
      if (error.code === 'body_too_deep') tidings.limited.bodyDepth++
      // Aphlict's line: the peer's address, not a client-supplied header (that could forge it).
      // Rate-limited per code: anyone who reaches the port can cause these.
      const what = error.status === 401 ? 'Unauthorized!' : 'Bad Request!'
      tidings.log.log(
        `admin:${error.code}`,
        `${options.remoteAddress?.(c) ?? '<unknown>'} ${what} ${error.message}`
      )
      return c.json(error.toJSON(), error.status)
    }
    tidings.log.log(
      'admin:internal_error',
      `Internal Server Error! ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`
    )
    return c.json(new RequestError('internal_error', 500, 'Internal server error.').toJSON(), 500)
  })

  return app
}
