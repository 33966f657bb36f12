/**
 * The Worker entry: one public origin for both of Aphlict's ports.
 *
 * - A WebSocket upgrade on any path is a client: its instance comes from the `~name` path
 *   segment, and it goes to one of the instance's shards (round-robin).
 * - A request carrying `X-Tidings-Secret`, or any method but GET/HEAD, is an admin request:
 *   it needs the secret (401 otherwise). `POST /` goes to every shard of the instance and
 *   answers shard 0's receipt; `/status/` asks every shard and sums the answers.
 * - Anything else is a plain HTTP request to the client port: Aphlict's 501.
 */
import { parseMessage, readBody } from '../../src/admin/body.ts'
import { targetPath } from '../../src/client/admission.ts'
import { createClientApp } from '../../src/client/app.ts'
import { ConfigError, RequestError } from '../../src/errors.ts'
import { generateUniqueId } from '../../src/fingerprint.ts'
import {
  DEFAULT_INSTANCE,
  instanceFromPath,
  instanceFromQuery,
  isValidInstance,
} from '../../src/instance.ts'
import type { StatusBody } from '../../src/tidings.ts'
import { checkSecret, SECRET_HEADER } from './auth.ts'
import { settingsOf, type WorkerSettings } from './env.ts'
import { shardName } from './names.ts'
import { TidingsObject, type WorkerEnv } from './object.ts'
import { mergeStatus } from './status.ts'

export { TidingsObject }

const clientApp = createClientApp()
/** Next shard for an upgrade; starts at a random shard in each isolate. */
let nextShard = -1

function errorResponse(error: RequestError | ConfigError): Response {
  const body =
    error instanceof RequestError
      ? error.toJSON()
      : { error: { code: error.code, message: error.message } }
  return Response.json(body, { status: error instanceof RequestError ? error.status : 500 })
}

function shardStub(env: WorkerEnv, instance: string, shard: number) {
  return env.TIDINGS.get(env.TIDINGS.idFromName(shardName(instance, shard)))
}

function isAdminRequest(request: Request, url: URL, settings: WorkerSettings): boolean {
  if (request.headers.has(SECRET_HEADER)) return true
  if (request.method !== 'GET' && request.method !== 'HEAD') return true
  // Open deployments (local development) let `curl …/status/` through without the header.
  return settings.open && url.pathname === '/status/'
}

/** The `origins` allow-list, as on Node: browsers send `Origin`; other clients may not. */
function refusedOrigin(request: Request, settings: WorkerSettings): Response | undefined {
  const { origins } = settings.config
  const origin = request.headers.get('origin')
  if (!origins || origin === null || origins.includes(origin.toLowerCase())) return undefined
  const message = `Origin ${JSON.stringify(origin.slice(0, 200))} may not open client connections here (see "origins" in TIDINGS_CONFIG).`
  return Response.json({ error: { code: 'origin_not_allowed', message } }, { status: 403 })
}

function upgrade(request: Request, env: WorkerEnv, settings: WorkerSettings): Promise<Response> {
  const refused = refusedOrigin(request, settings)
  if (refused !== undefined) return Promise.resolve(refused)
  const instance = instanceFromPath(targetPath(request.url))
  if (!isValidInstance(instance)) {
    return Promise.resolve(
      errorResponse(
        new RequestError(
          'instance_invalid',
          400,
          'The ~instance in the path is not a valid instance name.'
        )
      )
    )
  }
  if (nextShard < 0) nextShard = Math.floor(Math.random() * settings.shards)
  const shard = nextShard++ % settings.shards
  return shardStub(env, instance, shard).fetch(request)
}

/** Delivers a POST on every shard; answers with shard 0's reply (the receipt). */
async function publish(
  request: Request,
  url: URL,
  env: WorkerEnv,
  settings: WorkerSettings,
  instance: string
): Promise<Response> {
  let body: Uint8Array
  try {
    body = await readBody(request, settings.config.limits.bodyBytes)
    // Checked once here; and a message without a uniqueID gets one here, so every shard
    // (and every peer) knows it by the same id.
    const message = parseMessage(body, settings.config.limits.bodyDepth)
    if (message.uniqueId === undefined) {
      message.value.uniqueID = generateUniqueId()
      body = new TextEncoder().encode(JSON.stringify(message.value))
    }
  } catch (error) {
    if (error instanceof RequestError) return errorResponse(error)
    throw error
  }
  const replies = await Promise.allSettled(
    Array.from({ length: settings.shards }, (_, shard) =>
      shardStub(env, instance, shard).fetch(url.href, {
        method: 'POST',
        headers: request.headers,
        body,
      })
    )
  )
  replies.forEach((reply, shard) => {
    if (reply.status === 'rejected' || reply.value.status !== 200) {
      const why =
        reply.status === 'rejected' ? String(reply.reason) : `status ${reply.value.status}`
      if (shard > 0) console.warn(`[${instance}/${shard}] Delivery failed: ${why}`)
    }
  })
  const first = replies[0] as PromiseSettledResult<Response>
  if (first.status === 'rejected') throw first.reason
  return first.value
}

function internalError(error: unknown): Response {
  console.error(
    `Internal Server Error! ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`
  )
  return errorResponse(new RequestError('internal_error', 500, 'Internal server error.'))
}

/** Asks every shard for its status and sums the answers. */
async function status(
  request: Request,
  env: WorkerEnv,
  settings: WorkerSettings,
  instance: string
): Promise<Response> {
  const replies = await Promise.all(
    Array.from({ length: settings.shards }, (_, shard) =>
      shardStub(env, instance, shard).fetch(request.url, { headers: request.headers })
    )
  )
  const failed = replies.find((reply) => reply.status !== 200)
  if (failed !== undefined) return failed
  const bodies = (await Promise.all(replies.map((reply) => reply.json()))) as StatusBody[]
  return Response.json(mergeStatus(bodies))
}

async function admin(
  request: Request,
  url: URL,
  env: WorkerEnv,
  settings: WorkerSettings
): Promise<Response> {
  const refused = await checkSecret(request, settings.secret, settings.open)
  if (refused !== undefined) return errorResponse(refused)
  const instance = instanceFromQuery(url.searchParams.get('instance') ?? undefined)
  // A name no shard can have: any shard's admin app refuses it with the core's 400.
  if (!isValidInstance(instance)) return shardStub(env, DEFAULT_INSTANCE, 0).fetch(request)
  if (url.pathname === '/' && request.method === 'POST') {
    return publish(request, url, env, settings, instance)
  }
  if (url.pathname === '/status/') return status(request, env, settings, instance)
  return shardStub(env, instance, 0).fetch(request)
}

export default {
  async fetch(request, env): Promise<Response> {
    const settings = settingsOf(env)
    if (settings instanceof ConfigError) {
      console.error(`tidings cannot start: ${settings.message}`)
      return errorResponse(settings)
    }
    try {
      if (request.headers.get('upgrade')?.toLowerCase() === 'websocket') {
        return await upgrade(request, env, settings)
      }
      const url = new URL(request.url)
      if (isAdminRequest(request, url, settings)) return await admin(request, url, env, settings)
      return await clientApp.fetch(request)
    } catch (error) {
      // A shard that could not be reached (overloaded, being reset): a coded 500, not a stack.
      return internalError(error)
    }
  },
} satisfies ExportedHandler<WorkerEnv>
