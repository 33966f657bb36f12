/**
 * The admin port as a Hono app, built by the node (src/node/node.ts): `POST /?instance=`
 * publishes, `/status/` reports, and the operations routes (ops-routes.ts). The same app on
 * every runtime; errors are coded JSON, refusals are counted, and lines a caller can cause
 * are rate-limited.
 */
import { type Context, Hono } from 'hono'
import { RequestError } from '../errors.ts'
import type { TidingsNode } from '../node/node.ts'
import { HELLO_HEADER, QUEUED_HEADER, queuedMsOf } from '../relay/envelope.ts'
import { SECRET_HEADER } from '../relay/secret.ts'
import { authorize } from './auth.ts'
import { mountOpsRoutes } from './ops-routes.ts'
import { adminInstance, readPublish } from './publish.ts'

export function createAdminApp(node: TidingsNode): Hono {
  const { tidings } = node
  const app = new Hono()
  const remoteAddress = (c: Context): string | undefined =>
    node.options.runtime?.remoteAddress?.(c.req.raw, c.env)

  const guard = async (c: Context): Promise<void> => {
    const policy = node.secretPolicy
    if (!policy.secret && !policy.required) return
    const refusal = await authorize(c.req.header(SECRET_HEADER) ?? null, remoteAddress(c), policy)
    if (refusal) throw refusal
  }
  // A public admin endpoint (Workers) guards every route; otherwise only publishing needs it.
  const everyRoute = node.secretPolicy.everyRoute
  if (everyRoute) {
    app.use('*', async (c, next) => {
      await guard(c)
      await next()
    })
  }

  // Aphlict answers /status/ to any method (Phorge GETs it); the slash is required.
  app.all('/status/', async (c) => {
    if (c.req.header(HELLO_HEADER)) node.relay?.heardHello()
    return c.json(await node.statusOf(adminInstance(c.req.query('instance'))))
  })

  app.post('/', async (c) => {
    if (!everyRoute) await guard(c)
    const { fanoutBacklog, bodyBytes, bodyDepth } = node.config.limits
    if (tidings.hub.backlog > fanoutBacklog) {
      tidings.limited.fanoutBacklog++
      throw new RequestError(
        'overloaded',
        503,
        `More than ${fanoutBacklog} deliveries are waiting ("limits.fanoutBacklog"); retry shortly or post to another node.`,
        1
      )
    }
    const publish = await readPublish(c.req.raw, c.req.query('instance'), { bodyBytes, bodyDepth })
    const queued = queuedMsOf(c.req.header(QUEUED_HEADER), node.config.relay.maxAge)
    const postedAt = queued === undefined ? undefined : tidings.options.clock.now() - queued
    tidings.ingest(publish.instance, publish.message, { postedAt })
    return c.json({ fingerprint: tidings.fingerprint })
  })

  mountOpsRoutes(app, node)

  app.all('/', (c) => c.body(null, 405))
  app.notFound((c) => c.body(null, 404))

  app.onError((error, c) => {
    if (error instanceof RequestError && error.status === 503) {
      // Counted in `limited` (and logged, rate-limited, where it was decided).
      if (tidings.options.logger.tracing)
        tidings.options.logger.trace(`Overloaded! ${error.message}`)
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
        `${remoteAddress(c) ?? '<unknown>'} ${what} ${error.message}`
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
