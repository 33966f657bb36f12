/**
 * The Worker entry: one public origin for both of Aphlict's ports, routing to the Durable
 * Objects (object.ts) that are the instance's shards. Policy is the core's: the instance name
 * of a path or query, the secret (every admin request needs it here), a publish checked once
 * (and given its uniqueID) before it goes to every shard, and the merged `/status/`.
 *
 * - A WebSocket upgrade on any path is a client: it goes to one of its instance's shards
 *   (round-robin), which admits it or refuses it.
 * - A request carrying `X-Tidings-Secret`, or any method but GET/HEAD, is an admin request.
 * - Anything else is a plain HTTP request to the client port: Aphlict's 501.
 */
import { authorize } from '../../src/admin/auth.ts'
import { adminInstance, readPublish } from '../../src/admin/publish.ts'
import { mergeStatus } from '../../src/admin/status-merge.ts'
import { targetPath } from '../../src/client/admission.ts'
import { createClientApp } from '../../src/client/app.ts'
import { RequestError } from '../../src/errors.ts'
import { instanceFromPath, isValidInstance } from '../../src/instance-name.ts'
import { SECRET_HEADER } from '../../src/relay/secret.ts'
import type { StatusBody } from '../../src/tidings.ts'
import { settingsOf, type WorkerSettings } from './env.ts'
import { shardName } from './names.ts'
import { TidingsObject, type WorkerEnv } from './object.ts'
import { publishReply } from './replies.ts'

export { TidingsObject }

const clientApp = createClientApp()
/** Next shard for an upgrade; starts at a random shard in each isolate. */
let nextShard = -1

function shards(env: WorkerEnv, instance: string, settings: WorkerSettings) {
  return Array.from({ length: settings.shards }, (_, shard) =>
    env.TIDINGS.get(env.TIDINGS.idFromName(shardName(instance, shard)))
  )
}

function isAdminRequest(request: Request, url: URL, settings: WorkerSettings): boolean {
  if (request.headers.has(SECRET_HEADER)) return true
  if (request.method !== 'GET' && request.method !== 'HEAD') return true
  // Open deployments (local development) let `curl …/status/` through without the header.
  return settings.open && url.pathname === '/status/'
}

function upgrade(request: Request, env: WorkerEnv, settings: WorkerSettings): Promise<Response> {
  const instance = instanceFromPath(targetPath(request.url))
  if (!isValidInstance(instance)) {
    const message = 'The ~instance in the path is not a valid instance name.'
    return Promise.resolve(new RequestError('instance_invalid', 400, message).toResponse())
  }
  if (nextShard < 0) nextShard = Math.floor(Math.random() * settings.shards)
  const shard = shards(env, instance, settings)[nextShard++ % settings.shards]
  return (shard as DurableObjectStub<TidingsObject>).fetch(request)
}

/** Checks the POST once, then delivers it on every shard; answers as the shards did. */
async function publish(request: Request, url: URL, env: WorkerEnv, settings: WorkerSettings) {
  const { limits } = settings.config
  const query = url.searchParams.get('instance') ?? undefined
  const checked = await readPublish(request, query, limits)
  const { instance } = checked
  const body = checked.body()
  const replies = await Promise.allSettled(
    shards(env, instance, settings).map((shard) =>
      shard.fetch(url.href, { method: 'POST', headers: request.headers, body })
    )
  )
  return publishReply(replies)
}

/** Asks every shard for its status and merges the answers. */
async function status(
  request: Request,
  instance: string,
  env: WorkerEnv,
  settings: WorkerSettings
) {
  const replies = await Promise.all(
    shards(env, instance, settings).map((shard) =>
      shard.fetch(request.url, { headers: request.headers })
    )
  )
  const failed = replies.find((reply) => reply.status !== 200)
  if (failed !== undefined) return failed
  const bodies = (await Promise.all(replies.map((reply) => reply.json()))) as StatusBody[]
  return Response.json(mergeStatus(bodies))
}

async function admin(request: Request, url: URL, env: WorkerEnv, settings: WorkerSettings) {
  const policy = { secret: settings.secret, required: true, open: settings.open }
  const refused = await authorize(request.headers.get(SECRET_HEADER), undefined, policy)
  if (refused !== undefined) throw refused
  const instance = adminInstance(url.searchParams.get('instance') ?? undefined)
  if (url.pathname === '/' && request.method === 'POST') return publish(request, url, env, settings)
  if (url.pathname === '/status/') return status(request, instance, env, settings)
  return (shards(env, instance, settings)[0] as DurableObjectStub<TidingsObject>).fetch(request)
}

export default {
  async fetch(request, env): Promise<Response> {
    const settings = settingsOf(env)
    if (settings instanceof Error) {
      console.error(`tidings cannot start: ${settings.message}`)
      return new RequestError('config_invalid', 500, settings.message).toResponse()
    }
    try {
      if (request.headers.get('upgrade')?.toLowerCase() === 'websocket') {
        return await upgrade(request, env, settings)
      }
      const url = new URL(request.url)
      if (isAdminRequest(request, url, settings)) return await admin(request, url, env, settings)
      return await clientApp.fetch(request)
    } catch (error) {
      if (error instanceof RequestError) return error.toResponse()
      // A shard that could not be reached (overloaded, being reset): a coded 500, not a stack.
      console.error(
        `Internal Server Error! ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`
      )
      return new RequestError('internal_error', 500, 'Internal server error.').toResponse()
    }
  },
} satisfies ExportedHandler<WorkerEnv>
