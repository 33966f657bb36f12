/**
 * Keys and channels on the broker. Every name of an instance carries the same hash tag,
 * `{i:<instance>}`, so on Redis Cluster its history stream, epoch key and channel live on
 * one shard; per-subscriber channels are tagged by instance and id, so they spread over all
 * of them.
 */
export interface Names {
  /** The channel every message of `instance` is published to (routing `instance`). */
  instanceChannel(instance: string): string
  /** The channel of one subscriber id of `instance` (routing `subscriber`). */
  subscriberChannel(instance: string, id: string): string
  /** The history stream of `instance`. */
  stream(instance: string): string
  /** The key holding the history's epoch (see Backplane: a lost history gets a new one). */
  epoch(instance: string): string
}

export function brokerNames(prefix: string): Names {
  return {
    instanceChannel: (instance) => `${prefix}{i:${instance}}:m`,
    subscriberChannel: (instance, id) => `${prefix}{s:${instance}:${id}}`,
    stream: (instance) => `${prefix}{i:${instance}}:h`,
    epoch: (instance) => `${prefix}{i:${instance}}:e`,
  }
}
