/**
 * The Redis backplane with real redis-server processes on loopback and tidings nodes in
 * this process: delivery across nodes exactly once, interest (an idle node hears nothing),
 * the shared history behind a replay, a Redis outage buffered and published on its return,
 * and start-up refusals that name the key and the cause.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningServer, startServer } from '../../adapters/node/server.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { cleanups } from '../helpers/cleanups.ts'
import { type NodePorts, nodePorts } from '../helpers/cluster.ts'
import { startAphlictServer } from '../helpers/cluster-aphlict-server.ts'
import { loopbackConfig, silentLogger } from '../helpers/node-target.ts'
import { runCli, tempDir, writeConfig } from '../helpers/process.ts'
import { RedisCluster, RedisServer, redisAvailable } from '../helpers/redis.ts'
import { eventually, subscribedClient, type TestClient } from '../helpers/ws-client.ts'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const later = cleanups()

async function node(backplane: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const server = await startServer({
    config: parseConfig(loopbackConfig({ backplane, ...extra })),
    logger: silentLogger,
  })
  later(() => server.close(1000))
  return server
}

async function subscribed(server: RunningServer, ids: string[], path = '/'): Promise<TestClient> {
  const client = await subscribedClient(`${server.url('client')}${path}`, ids)
  later(() => client.close())
  return client
}

async function post(server: RunningServer, message: object, instance?: string): Promise<number> {
  const query = instance ? `?instance=${instance}` : ''
  const response = await fetch(`${server.url('admin')}/${query}`, {
    method: 'POST',
    body: JSON.stringify(message),
  })
  await response.arrayBuffer()
  return response.status
}

const status = async (server: RunningServer, instance = 'default') =>
  (await (await fetch(`${server.url('admin')}/status/?instance=${instance}`)).json()) as Record<
    string,
    unknown
  >

describe.skipIf(!redisAvailable())('backplane: redis', { timeout: 60_000 }, () => {
  let redis: RedisServer
  beforeAll(async () => {
    redis = await RedisServer.start()
  })
  afterAll(async () => {
    await redis?.dispose()
  })

  it('delivers a message posted to one node to the sockets of every node, once each', async () => {
    const prefix = 'deliver:'
    const nodes = [
      await node({ type: 'redis', url: redis.url, prefix }),
      await node({ type: 'redis', url: redis.url, prefix }),
      await node({ type: 'redis', url: redis.url, prefix }),
    ]
    const clients = await Promise.all(nodes.map((n) => subscribed(n, ['P'])))
    // Each node has subscribed its instance's channel once its first socket arrived.
    for (const n of nodes) {
      await eventually(
        () =>
          n.node.backplane?.interest.coverage([n.node.backplane.names.instanceChannel('default')]),
        (since) => since !== undefined
      )
    }
    const text = 'Grüße, 世界 🚀'
    expect(await post(nodes[0] as RunningServer, { key: 'a', text, subscribers: ['P'] })).toBe(200)
    expect(await post(nodes[2] as RunningServer, { key: 'b', subscribers: ['P'] })).toBe(200)
    for (const client of clients) {
      const frames = [await client.next(), await client.next()]
      expect(frames.map((frame) => frame.key).sort()).toEqual(['a', 'b'])
      expect(frames.find((frame) => frame.key === 'a')?.text).toBe(text)
      await client.silence()
    }
    const metrics = await (
      await fetch(`${(nodes[0] as RunningServer).url('admin')}/metrics`)
    ).text()
    expect(metrics).toContain('\ntidings_backplane_up 1\n')
    expect(metrics).toContain('\ntidings_backplane_published_total 1\n')
    expect(metrics).toContain('\ntidings_backplane_received_total 1\n')
    expect(metrics).toMatch(/\ntidings_backplane_publish_seconds_count 1\n/)
    expect(metrics).toMatch(/\ntidings_backplane_shard_published_total\{shard="redis"\} 1\n/)
    const first = await status(nodes[0] as RunningServer)
    expect(first).toMatchObject({
      backplane: 'redis',
      'backplane.state': 'up',
      'backplane.history': 'ok',
    })
  })

  it('subscribes only to what its sockets need: an idle node hears nothing', async () => {
    const prefix = 'interest:'
    const busy = await node({ type: 'redis', url: redis.url, prefix })
    const idle = await node({ type: 'redis', url: redis.url, prefix })
    const client = await subscribed(busy, ['P'])
    for (let i = 0; i < 5; i++) await post(busy, { key: `m${i}`, subscribers: ['P'] })
    for (let i = 0; i < 5; i++) expect((await client.next()).key).toBe(`m${i}`)
    expect(idle.node.backplane?.stats.received).toBe(0)
    expect(idle.node.backplane?.interest.size).toBe(0)
    // A socket on another instance of the idle node is not interest in this one either.
    await subscribed(idle, ['P'], '/~other/')
    await post(busy, { key: 'x', subscribers: ['P'] })
    expect((await client.next()).key).toBe('x')
    expect(idle.node.backplane?.stats.received).toBe(0)
  })

  it('routes by subscriber id: a node hears only the ids its sockets have', async () => {
    const settings = { type: 'redis', url: redis.url, prefix: 'ids:', routing: 'subscriber' }
    const a = await node(settings)
    const b = await node(settings)
    const onA = await subscribed(a, ['A'])
    const onB = await subscribed(b, ['B', 'AB'])
    const channel = (n: RunningServer, id: string) =>
      n.node.backplane?.names.subscriberChannel('default', id) as string
    await eventually(
      () => b.node.backplane?.interest.coverage([channel(b, 'B'), channel(b, 'AB')]),
      (since) => since !== undefined
    )
    await post(a, { key: 'to-b', subscribers: ['B', 'AB', 'nobody'] })
    expect((await onB.next()).key).toBe('to-b')
    await post(b, { key: 'to-a', subscribers: ['A'] })
    expect((await onA.next()).key).toBe('to-a')
    await post(a, { key: 'a-only', subscribers: ['A'] })
    expect((await onA.next()).key).toBe('a-only')
    // b heard one message (published on two of its channels, delivered once), a one.
    await onB.silence()
    expect(b.node.backplane?.stats.received).toBe(2)
    expect(b.node.tidings.duplicates).toBe(1)
    expect(a.node.backplane?.stats.received).toBe(1)
  })

  it('replays from the shared history on a node that was not hearing the instance', async () => {
    const settings = { type: 'redis', url: redis.url, prefix: 'replay:' }
    const a = await node(settings)
    const onA = await subscribed(a, ['P'])
    for (let i = 0; i < 3; i++) await post(a, { key: `h${i}`, subscribers: ['P', 'Q'] })
    await post(a, { key: 'other', subscribers: ['R'] })
    for (let i = 0; i < 3; i++) expect((await onA.next()).key).toBe(`h${i}`)
    // A node started after those messages, as a browser moves to it, asks for a replay.
    const b = await node(settings)
    const moved = await subscribed(b, ['Q'])
    moved.send({ command: 'replay', data: { age: 60_000 } })
    const replayed = [await moved.next(), await moved.next(), await moved.next()]
    expect(replayed.map((frame) => frame.key)).toEqual(['h0', 'h1', 'h2'])
    await moved.silence()
    expect(b.node.backplane?.stats.sharedReplays).toBe(1)
    // Live from now on; a second replay has each message once, though b now holds 'live'
    // in its own history as well as in the shared one.
    await post(a, { key: 'live', subscribers: ['Q'] })
    expect((await moved.next()).key).toBe('live')
    moved.send({ command: 'replay', data: { age: 60_000 } })
    const again = [1, 2, 3, 4].map(() => moved.next())
    expect((await Promise.all(again)).map((frame) => frame.key)).toEqual(['h0', 'h1', 'h2', 'live'])
    await moved.silence()
  })
})

describe.skipIf(!redisAvailable())(
  'backplane beside the cluster relay',
  { timeout: 60_000 },
  () => {
    it('mixes with relay peers: each node delivers every message once, wherever it was posted', async () => {
      const redis = await RedisServer.start()
      later(() => redis.dispose())
      const [px, pa, pb] = (await nodePorts(3)) as [NodePorts, NodePorts, NodePorts]
      const servers = (ports: NodePorts) => [
        { type: 'client', port: ports.client, listen: '127.0.0.1' },
        { type: 'admin', port: ports.admin, listen: '127.0.0.1' },
      ]
      const peer = (ports: NodePorts) => ({
        host: '127.0.0.1',
        port: ports.admin,
        protocol: 'http',
      })
      const start = async (config: Record<string, unknown>) => {
        const server = await startServer({ config: parseConfig(config), logger: silentLogger })
        later(() => server.close(1000))
        return server
      }
      const backplane = { type: 'redis', url: redis.url, prefix: 'mixed:' }
      // x is an original Aphlict (its relay rules, no dedup: a second copy would be
      // delivered twice) listing every node; the Redis nodes list it, and meet on Redis.
      const x = await startAphlictServer('AphlictMixedNode', px.admin, [
        `http://127.0.0.1:${pa.admin}`,
        `http://127.0.0.1:${pb.admin}`,
      ])
      later(() => x.close())
      const a = await start({ servers: servers(pa), cluster: [peer(px)], backplane })
      const b = await start({ servers: servers(pb), cluster: [peer(px)], backplane })
      const clients = await Promise.all([a, b].map((n) => subscribed(n, ['P'])))
      for (const n of [a, b]) {
        await eventually(
          () =>
            n.node.backplane?.interest.coverage([
              n.node.backplane.names.instanceChannel('default'),
            ]),
          (since) => since !== undefined
        )
      }
      const text = 'Ünïcödé ✓'
      // Phorge adds a uniqueID to every post; Aphlict relays it unchanged. (ASCII: Aphlict's
      // relay counts Content-Length in characters and would cut anything else short.)
      const aphlictPost = await fetch(`${x.url}/?instance=default`, {
        method: 'POST',
        headers: { 'x-test-publisher': '1' },
        body: JSON.stringify({ key: 'x', subscribers: ['P'], uniqueID: 'ux' }),
      })
      expect(aphlictPost.status).toBe(200)
      expect(await post(a, { key: 'a', text, subscribers: ['P'] })).toBe(200)
      expect(await post(b, { key: 'b', text, subscribers: ['P'] })).toBe(200)
      for (const client of clients) {
        const frames = [await client.next(), await client.next(), await client.next()]
        expect(frames.map((f) => f.key).sort()).toEqual(['a', 'b', 'x'])
        expect(frames.filter((f) => f.key !== 'x').every((f) => f.text === text)).toBe(true)
        await client.silence()
      }
      // Aphlict got a and b once each: relayed by the node that took them, not by the node
      // that heard them on Redis.
      const atX = x.rules.delivered.map((d) => JSON.parse(d.text).key as string)
      expect(atX.sort()).toEqual(['a', 'b', 'x'])
    })
  }
)

describe.skipIf(!redisAvailable())('backplane: faults', { timeout: 90_000 }, () => {
  it('keeps delivering locally while Redis is down, and publishes what it kept when it is back', async () => {
    const redis = await RedisServer.start()
    later(() => redis.dispose())
    const settings = { type: 'redis', url: redis.url, prefix: 'outage:' }
    const a = await node(settings)
    const b = await node(settings)
    const onA = await subscribed(a, ['P'])
    const onB = await subscribed(b, ['P'])
    await post(a, { key: 'before', subscribers: ['P'] })
    expect((await onA.next()).key).toBe('before')
    expect((await onB.next()).key).toBe('before')

    // Both know the history's identity before the outage, so they can tell it was lost.
    const epochs = await Promise.all(
      [a, b].map((n) =>
        eventually(
          () => status(n),
          (body) => typeof body['backplane.history.epoch'] === 'string'
        )
      )
    )
    expect(epochs[0]?.['backplane.history.epoch']).toBe(epochs[1]?.['backplane.history.epoch'])
    await redis.kill()
    await eventually(
      () => [a.node.backplane?.state, b.node.backplane?.state],
      (states) => states.every((state) => state === 'down')
    )
    const started = Date.now()
    for (let i = 0; i < 3; i++) {
      expect(await post(a, { key: `during${i}`, subscribers: ['P'] })).toBe(200)
    }
    // Answered at once, delivered on a, kept for b.
    expect(Date.now() - started).toBeLessThan(a.node.config.backplane?.commandTimeout ?? 0)
    for (let i = 0; i < 3; i++) expect((await onA.next()).key).toBe(`during${i}`)
    const ready = await (await fetch(`${a.url('admin')}/readyz`)).json()
    expect(ready).toEqual({ status: 'ready', backplane: 'down' })
    expect(await status(a)).toMatchObject({ 'backplane.state': 'down', 'backplane.buffered': 3 })

    await redis.restart()
    for (let i = 0; i < 3; i++) expect((await onB.next()).key).toBe(`during${i}`)
    await onA.silence()
    await onB.silence()
    expect(await status(a)).toMatchObject({ 'backplane.state': 'up', 'backplane.buffered': 0 })
    // The restarted Redis kept nothing: the history it had is gone, and /status/ says so.
    await eventually(
      () => status(b),
      (body) =>
        body['backplane.history'] === 'lost' && typeof body['backplane.history.lostAt'] === 'number'
    )
    // Subscriptions are back: live delivery across nodes again.
    await post(b, { key: 'after', subscribers: ['P'] })
    expect((await onA.next()).key).toBe('after')
    expect((await onB.next()).key).toBe('after')
    expect(a.node.backplane?.stats.reconnects).toBe(1)
  })

  it('never makes a POST or a delivery wait for a slow Redis, and still delivers once', async () => {
    const redis = await RedisServer.start({ args: ['--enable-debug-command', 'yes'] })
    later(() => redis.dispose())
    const settings = { type: 'redis', url: redis.url, prefix: 'slow:', commandTimeout: 500 }
    const a = await node(settings)
    const b = await node(settings)
    const onA = await subscribed(a, ['P'])
    const onB = await subscribed(b, ['P'])
    await post(a, { key: 'warm', subscribers: ['P'] })
    expect((await onB.next()).key).toBe('warm')
    expect((await onA.next()).key).toBe('warm')
    // Redis stops answering anyone for 3 s (commands time out after 500 ms meanwhile).
    const asleep = redis.cli('DEBUG', 'SLEEP', '3')
    await sleep(100)
    for (let i = 0; i < 5; i++) {
      const started = Date.now()
      expect(await post(a, { key: `slow${i}`, subscribers: ['P'] })).toBe(200)
      // A POST that waited for Redis would take until it wakes (3 s).
      expect(Date.now() - started).toBeLessThan(1500)
      expect((await onA.next()).key).toBe(`slow${i}`)
    }
    expect(await asleep).toBe('OK')
    // Publishes that timed out were retried; some reached Redis twice: b delivers each once.
    for (let i = 0; i < 5; i++) expect((await onB.next()).key).toBe(`slow${i}`)
    await onB.silence()
    expect(a.node.backplane?.stats.failures).toBeGreaterThan(0)
  })

  it('refuses to start with one line naming the key and the cause', async () => {
    const redis = await RedisServer.start()
    later(() => redis.dispose())
    // Set after start: the helper checks it is up with a plain PING.
    await redis.cli('CONFIG', 'SET', 'requirepass', 's3cret')
    const gone = await RedisServer.start()
    await gone.dispose()
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { type: 'redis', url: gone.url },
        /^Unable to use the backplane \("backplane\.url" redis:\/\/127\.0\.0\.1:\d+\): connect ECONNREFUSED/,
      ],
      [
        { type: 'redis', url: redis.url.replace('redis://', 'redis://:wrong@') },
        /^Unable to use the backplane \("backplane\.url" redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\): Redis refused the user name or password \(WRONGPASS\)\.$/,
      ],
      [
        { type: 'redis', url: redis.url },
        /\): Redis requires a password \(NOAUTH\); give it in the URL or as "backplane\.password"\.$/,
      ],
      [
        { type: 'redis-cluster', nodes: [redis.url.replace('redis://', 'redis://:s3cret@')] },
        /^Unable to use the backplane \("backplane\.nodes" redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\): it is not a Redis Cluster/,
      ],
    ]
    for (const [backplane, pattern] of cases) {
      const error = await startServer({
        config: parseConfig(loopbackConfig({ backplane })),
        logger: silentLogger,
      }).then(
        (server) => {
          later(() => server.close(1000))
          return new Error('started')
        },
        (failure: Error) => failure
      )
      expect(error.name).toBe('StartupError')
      expect(error.message).toMatch(pattern)
      expect(error.message).not.toContain('s3cret')
    }
  })
})

describe.skipIf(!redisAvailable())('backplane: tidings test --connect', { timeout: 60_000 }, () => {
  it('says whether the configured backplane can be used, binding nothing', async () => {
    const redis = await RedisServer.start()
    later(() => redis.dispose())
    const dir = tempDir()
    const config = (url: string) =>
      writeConfig(dir, {
        servers: [
          { type: 'client', port: 1 },
          { type: 'admin', port: 2 },
        ],
        backplane: { type: 'redis', url },
      })
    const ok = await runCli(['test', '--config', config(redis.url), '--connect'])
    expect(ok.stdout).toMatch(
      /^Backplane reachable \(redis\); its clock is \d+ ms from this one\.\nConfiguration test OK\.\n$/
    )
    expect(ok.code).toBe(0)
    await redis.kill()
    const down = await runCli([
      'test',
      '--config',
      config(redis.url.replace('//', '//app:pw@')),
      '--connect',
    ])
    expect(down.code).toBe(1)
    expect(down.stderr).toMatch(
      /^tidings: Unable to use the backplane \("backplane\.url" redis:\/\/app:\*\*\*@127\.0\.0\.1:\d+\): connect ECONNREFUSED/
    )
    // Without --connect, only the file is checked.
    expect((await runCli(['test', '--config', config(redis.url)])).code).toBe(0)
  })
})

describe.skipIf(!redisAvailable())('backplane: redis-cluster', { timeout: 120_000 }, () => {
  let cluster: RedisCluster
  beforeAll(async () => {
    cluster = await RedisCluster.start({ masters: 3 })
  }, 60_000)
  afterAll(async () => {
    await cluster?.dispose()
  })

  it('spreads subscriber channels over the shards with sharded pub/sub, and survives a master restart', async () => {
    const settings = {
      type: 'redis-cluster',
      nodes: cluster.urls,
      prefix: 'sharded:',
      routing: 'subscriber',
    }
    const nodes = [await node(settings), await node(settings), await node(settings)]
    const ids = Array.from({ length: 12 }, (_, i) => `PHID-USER-${i}`)
    const clients = await Promise.all(nodes.map((n) => subscribed(n, ids)))
    for (const n of nodes) {
      const channels = ids.map(
        (id) => n.node.backplane?.names.subscriberChannel('default', id) as string
      )
      await eventually(
        () => n.node.backplane?.interest.coverage(channels),
        (since) => since !== undefined
      )
    }
    const receive = async (keys: string[]) => {
      for (const client of clients) {
        const got: string[] = []
        for (const _ of keys) got.push((await client.next()).key as string)
        expect(got.sort()).toEqual([...keys].sort())
        await client.silence()
      }
    }
    const first = ids.map((id, i) => ({ key: `k${i}`, subscribers: [id] }))
    for (const [i, message] of first.entries()) {
      expect(await post(nodes[i % 3] as RunningServer, message)).toBe(200)
    }
    await receive(first.map((m) => m.key))
    // Twelve channels hash to more than one shard: the publishes went to several masters.
    const shards = new Set(
      nodes.flatMap((n) => Object.keys(n.node.stats().backplane?.shards ?? {}))
    )
    expect(shards.size).toBeGreaterThan(1)

    await cluster.restartMaster(0)
    const second = ids.map((id, i) => ({ key: `r${i}`, subscribers: [id] }))
    for (const [i, message] of second.entries()) {
      expect(await post(nodes[i % 3] as RunningServer, message)).toBe(200)
    }
    await receive(second.map((m) => m.key))
    for (const n of nodes) {
      expect(n.node.backplane?.state).toBe('up')
      // Every node lost its connections to that master and got them back.
      expect(n.node.backplane?.stats.reconnects).toBeGreaterThanOrEqual(1)
    }
  })

  it('routes by instance on the cluster too, with the history stream beside its channel', async () => {
    const settings = { type: 'redis-cluster', nodes: cluster.urls, prefix: 'cinst:' }
    const a = await node(settings)
    const onA = await subscribed(a, ['P'], '/~phorge/')
    await post(a, { key: 'one', subscribers: ['P'] }, 'phorge')
    expect((await onA.next()).key).toBe('one')
    const b = await node(settings)
    const late = await subscribed(b, ['P'], '/~phorge/')
    late.send({ command: 'replay', data: { age: 60_000 } })
    expect((await late.next()).key).toBe('one')
    await post(b, { key: 'two', subscribers: ['P'] }, 'phorge')
    expect((await onA.next()).key).toBe('two')
    expect((await late.next()).key).toBe('two')
    // One shard holds all of the instance: its channel and its stream share a hash tag.
    expect(Object.keys(b.node.stats().backplane?.shards ?? {})).toHaveLength(1)
  })
})
