/**
 * Durable Object names. Each instance's sockets are spread over `TIDINGS_SHARDS` objects
 * named `<instance>/<shard>`; one more object, `~deployment`, holds the deployment's
 * fingerprint. Neither `/` nor `~` can occur in an instance name, so names never collide.
 */

export const DEPLOYMENT_OBJECT = '~deployment'

export function shardName(instance: string, shard: number): string {
  return `${instance}/${shard}`
}

export function parseShardName(name: string): { instance: string; shard: number } | undefined {
  const slash = name.lastIndexOf('/')
  if (slash <= 0) return undefined
  const shard = Number(name.slice(slash + 1))
  if (!Number.isInteger(shard) || shard < 0) return undefined
  return { instance: name.slice(0, slash), shard }
}
