/**
 * The backplane's Broker on Node, over node-redis (`@redis/client`, the client of the
 * official `redis` package without the module packages tidings does not use).
 *
 * `redis`: one connection for commands and one for subscriptions. `redis-cluster`: the
 * cluster client, which keeps a connection per master (and a sharded-pubsub connection per
 * shard); publishes are `SPUBLISH` and subscriptions `SSUBSCRIBE`, so each channel's traffic
 * stays on the shard that owns it.
 *
 * Commands are never queued while a connection is down (the backplane buffers instead) and
 * time out after `backplane.commandTimeout`. Start-up fails on the first error (refused,
 * wrong credentials, not a cluster, timeout); after that, connections come back with
 * capped back-off and the subscriptions are restored before `up` is reported.
 */
import {
  createClient,
  createCluster,
  RESP_TYPES,
  type RedisClientOptions,
  type RedisClientType,
  type RedisClusterType,
} from '@redis/client'
import type {
  Broker,
  BrokerEvents,
  BrokerFactory,
  StreamEntry,
} from '../../src/backplane/broker.ts'
import type { BackplaneOptions } from '../../src/config/schema.ts'
import { hashSlot } from './redis-slot.ts'

// Payloads and stream entries are bytes, not strings.
const BUFFERS = { [RESP_TYPES.BLOB_STRING]: Buffer } as const

type Client = RedisClientType<
  Record<string, never>,
  Record<string, never>,
  Record<string, never>,
  2 | 3,
  typeof BUFFERS
>
type Cluster = RedisClusterType<
  Record<string, never>,
  Record<string, never>,
  Record<string, never>,
  2 | 3,
  typeof BUFFERS
>

/** Reconnect back-off once running: 100 ms more per attempt, at most 2 s, with jitter. */
function backoff(attempt: number): number {
  return Math.min(2000, 100 * (attempt + 1)) * (0.5 + Math.random() / 2)
}

export function redisBrokerFactory(settings: BackplaneOptions): BrokerFactory {
  return (events) =>
    settings.type === 'redis-cluster'
      ? new RedisClusterBroker(settings, events)
      : new RedisBroker(settings, events)
}

function clientOptions(settings: BackplaneOptions, started: () => boolean): RedisClientOptions {
  return {
    ...(settings.username ? { username: settings.username } : {}),
    ...(settings.password ? { password: settings.password } : {}),
    disableOfflineQueue: true,
    socket: {
      connectTimeout: settings.connectTimeout,
      // At start-up the first failure is the answer; afterwards, keep trying.
      reconnectStrategy: (attempt: number, cause: Error) => (started() ? backoff(attempt) : cause),
    },
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error) => {
        clearTimeout(timer)
        reject(error)
      }
    )
  })
}

/** node-redis's start-up errors, said plainly (the original code kept in brackets). */
function startupReason(error: unknown): string {
  const message = (error as Error).message ?? String(error)
  if (/^NOAUTH/.test(message)) {
    return 'Redis requires a password (NOAUTH); give it in the URL or as "backplane.password"'
  }
  if (/^WRONGPASS/.test(message)) {
    return 'Redis refused the user name or password (WRONGPASS)'
  }
  if (/cluster support disabled/i.test(message)) {
    return 'it is not a Redis Cluster (cluster support is disabled); use "type": "redis" with "url"'
  }
  return message
}

const decoder = new TextDecoder()
const text = (value: unknown): string =>
  value instanceof Uint8Array ? decoder.decode(value) : String(value)

/** Shared by both: the command timeout, and down/up reporting from connection events. */
abstract class BaseBroker implements Broker {
  protected started = false
  protected closed = false
  /** Connections (by name) currently not ready. */
  readonly #broken = new Set<string>()

  constructor(
    protected readonly settings: BackplaneOptions,
    protected readonly events: BrokerEvents
  ) {}

  abstract connect(): Promise<void>
  abstract publish(channel: string, payload: Uint8Array): Promise<string>
  abstract subscribe(channels: readonly string[]): Promise<void>
  abstract unsubscribe(channels: readonly string[]): Promise<void>
  abstract close(): Promise<void>
  protected abstract commands(): Client | Cluster

  /** A command, bounded by `backplane.commandTimeout`. */
  protected timed<T>(what: string, run: () => Promise<T>): Promise<T> {
    return withTimeout(run(), this.settings.commandTimeout, what)
  }

  protected broken(name: string, reason: string): void {
    if (!this.started || this.closed) return
    const first = this.#broken.size === 0
    this.#broken.add(name)
    if (first) this.events.down(reason)
  }

  protected ready(name: string): void {
    if (!this.started || this.closed || !this.#broken.delete(name)) return
    if (this.#broken.size === 0) this.events.up()
  }

  async append(stream: string, payload: Uint8Array, maxLen: number): Promise<void> {
    await this.timed('XADD', () =>
      this.commands().xAdd(
        stream,
        '*',
        { m: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength) },
        { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: maxLen } }
      )
    )
  }

  async trim(stream: string, beforeMs: number): Promise<void> {
    await this.timed('XTRIM', () =>
      this.commands().xTrim(stream, 'MINID', Math.floor(beforeMs), { strategyModifier: '~' })
    )
  }

  async range(stream: string, start: string, count: number): Promise<StreamEntry[]> {
    const entries = await this.timed('XRANGE', () =>
      this.commands().xRange(stream, start, '+', { COUNT: count })
    )
    if (!entries) return []
    return entries.map((entry) => {
      const message = entry.message as unknown as Record<string, Buffer>
      const payload = message.m ?? Buffer.alloc(0)
      return { id: text(entry.id), payload: new Uint8Array(payload) }
    })
  }

  async claim(key: string, value: string): Promise<string> {
    const previous = await this.timed('SET', () =>
      this.commands().set(key, value, { condition: 'NX', GET: true })
    )
    return previous === null || previous === undefined ? value : text(previous)
  }

  async time(): Promise<number> {
    const reply = await this.timed('TIME', () => this.timeCommand())
    const [seconds, micros] = reply.map((part) => Number(text(part)))
    return (seconds as number) * 1000 + Math.floor((micros as number) / 1000)
  }

  /** TIME on any node: `[seconds, microseconds]`. */
  protected abstract timeCommand(): Promise<unknown[]>
}

class RedisBroker extends BaseBroker {
  readonly #commands: Client
  readonly #subscriber: Client

  constructor(settings: BackplaneOptions, events: BrokerEvents) {
    super(settings, events)
    const options = clientOptions(settings, () => this.started)
    this.#commands = createClient({ url: settings.url, ...options }).withTypeMapping(
      BUFFERS
    ) as unknown as Client
    this.#subscriber = this.#commands.duplicate() as Client
    this.#watch(this.#commands, 'commands')
    this.#watch(this.#subscriber, 'subscriber')
  }

  #watch(client: Client, name: string): void {
    client.on('error', (error: Error) => this.broken(name, error.message))
    client.on('reconnecting', () => this.broken(name, 'reconnecting'))
    client.on('ready', () => this.ready(name))
  }

  protected commands(): Client {
    return this.#commands
  }

  protected async timeCommand(): Promise<unknown[]> {
    return (await this.#commands.sendCommand(['TIME'])) as unknown[]
  }

  async connect(): Promise<void> {
    try {
      await withTimeout(
        Promise.all([this.#commands.connect(), this.#subscriber.connect()]),
        this.settings.connectTimeout,
        'connecting'
      )
      const info = text(await this.timed('INFO', () => this.#commands.info('cluster')))
      if (/cluster_enabled:1/.test(info)) {
        throw new Error('it is a Redis Cluster node; use "type": "redis-cluster" with "nodes"')
      }
    } catch (error) {
      await this.close()
      throw new Error(startupReason(error))
    }
    this.started = true
  }

  async publish(channel: string, payload: Uint8Array): Promise<string> {
    await this.timed('PUBLISH', () =>
      this.#commands.publish(
        channel,
        Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
      )
    )
    return 'redis'
  }

  async subscribe(channels: readonly string[]): Promise<void> {
    await this.timed('SUBSCRIBE', () =>
      this.#subscriber.subscribe(
        [...channels],
        (message: Buffer, channel: Buffer | string) =>
          this.events.message(text(channel), new Uint8Array(message)),
        true
      )
    )
  }

  async unsubscribe(channels: readonly string[]): Promise<void> {
    await this.timed('UNSUBSCRIBE', () => this.#subscriber.unsubscribe([...channels]))
  }

  async close(): Promise<void> {
    this.closed = true
    await Promise.all(
      [this.#commands, this.#subscriber].map((client) =>
        client.isOpen ? client.close().catch(() => client.destroy()) : undefined
      )
    )
  }
}

class RedisClusterBroker extends BaseBroker {
  readonly #cluster: Cluster

  constructor(settings: BackplaneOptions, events: BrokerEvents) {
    super(settings, events)
    const options = clientOptions(settings, () => this.started)
    this.#cluster = createCluster({
      rootNodes: (settings.nodes ?? []).map((url) => ({ url })),
      defaults: options,
      useReplicas: false,
    }).withTypeMapping(BUFFERS) as unknown as Cluster
    const cluster = this.#cluster as unknown as NodeJS.EventEmitter
    const nameOf = (info: { host?: string; port?: number } | undefined) =>
      `${info?.host ?? '?'}:${info?.port ?? '?'}`
    cluster.on('error', (error: Error) => this.broken('cluster', error.message))
    cluster.on('node-error', (error: Error, info: { host?: string; port?: number }) =>
      this.broken(nameOf(info), error.message)
    )
    cluster.on('node-reconnecting', (info: { host?: string; port?: number }) =>
      this.broken(nameOf(info), 'reconnecting')
    )
    cluster.on('node-ready', (info: { host?: string; port?: number }) => {
      this.ready(nameOf(info))
      this.ready('cluster')
    })
  }

  protected commands(): Cluster {
    return this.#cluster
  }

  protected async timeCommand(): Promise<unknown[]> {
    return (await this.#cluster.sendCommand(undefined, true, ['TIME'])) as unknown[]
  }

  /**
   * Asks the seed nodes, one at a time, whether they are a cluster at all: the cluster
   * client would only say "All the root nodes are unavailable". Resolves at the first that
   * is; rejects with the first node's reason when none is.
   */
  async #probe(): Promise<void> {
    let first: unknown
    for (const url of this.settings.nodes ?? []) {
      const client = createClient({ url, ...clientOptions(this.settings, () => false) })
      client.on('error', () => {})
      try {
        await withTimeout(client.connect(), this.settings.connectTimeout, 'connecting')
        const info = text(await this.timed('INFO', () => client.info('cluster')))
        if (!/cluster_enabled:1/.test(info)) {
          throw new Error(
            'it is not a Redis Cluster (cluster support is disabled); use "type": "redis" with "url"'
          )
        }
        return
      } catch (error) {
        first ??= error
      } finally {
        if (client.isOpen) await client.close().catch(() => client.destroy())
      }
    }
    throw first
  }

  async connect(): Promise<void> {
    try {
      await this.#probe()
      await withTimeout(this.#cluster.connect(), this.settings.connectTimeout, 'connecting')
    } catch (error) {
      await this.close()
      throw new Error(startupReason(error))
    }
    this.started = true
  }

  async publish(channel: string, payload: Uint8Array): Promise<string> {
    await this.timed('SPUBLISH', () =>
      this.#cluster.sPublish(
        channel,
        Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
      )
    )
    const master = this.#cluster.getSlotMaster(hashSlot(channel))
    return `${master.host}:${master.port}`
  }

  async subscribe(channels: readonly string[]): Promise<void> {
    // One SSUBSCRIBE per channel: a command's channels must share a slot.
    await this.timed('SSUBSCRIBE', () =>
      Promise.all(
        channels.map((channel) =>
          this.#cluster.sSubscribe(
            channel,
            (message: Buffer, from: Buffer | string) =>
              this.events.message(text(from), new Uint8Array(message)),
            true
          )
        )
      )
    )
  }

  async unsubscribe(channels: readonly string[]): Promise<void> {
    await this.timed('SUNSUBSCRIBE', () =>
      Promise.all(channels.map((channel) => this.#cluster.sUnsubscribe(channel)))
    )
  }

  async close(): Promise<void> {
    this.closed = true
    await this.#cluster.close().catch(() => this.#cluster.destroy())
  }
}
