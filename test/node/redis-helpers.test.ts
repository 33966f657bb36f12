/**
 * The real-redis test helpers themselves: a single server that restarts empty on its own
 * port, and a 3-master cluster that comes back ok after a master is SIGKILLed and restarted.
 * Skipped where redis-server is not installed (`.ci/install-redis.sh` installs it).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { RedisCluster, RedisServer, redisAvailable } from '../helpers/redis.ts'

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
}, 30_000)

describe.skipIf(!redisAvailable())('real redis-server helpers', { timeout: 60_000 }, () => {
  it('starts a server on loopback that keeps nothing across a restart', async () => {
    const server = await RedisServer.start()
    cleanups.push(() => server.dispose())
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
    expect(await server.cli('config', 'get', 'bind')).toBe('bind\n127.0.0.1')
    expect(await server.cli('set', 'greeting', 'hello')).toBe('OK')
    expect(await server.cli('get', 'greeting')).toBe('hello')

    await server.restart()
    expect(await server.cli('ping')).toBe('PONG')
    expect(await server.cli('get', 'greeting')).toBe('')
    expect(await server.cli('exists', 'greeting')).toBe('0')

    await server.stop()
    expect(server.running).toBe(false)
    await expect(server.cli('ping')).rejects.toThrow(/redis-cli/)
  })

  it('passes extra arguments and keeps them across a restart', async () => {
    const server = await RedisServer.start({ args: ['--maxmemory', '12mb'] })
    cleanups.push(() => server.dispose())
    expect(await server.cli('config', 'get', 'maxmemory')).toBe(`maxmemory\n${12 * 1024 * 1024}`)
    await server.restart()
    expect(await server.cli('config', 'get', 'maxmemory')).toBe(`maxmemory\n${12 * 1024 * 1024}`)
  })

  it('rejects with the server output when it cannot start', async () => {
    await expect(RedisServer.start({ args: ['--no-such-option', 'x'] })).rejects.toThrow(
      /before answering PING[\s\S]*no-such-option/
    )
  })

  it('forms a 3-master cluster that is ok again after a master restarts', async () => {
    const cluster = await RedisCluster.start()
    cleanups.push(() => cluster.dispose())
    expect(cluster.nodes).toHaveLength(3)
    expect(cluster.urls).toEqual(cluster.nodes.map((node) => `redis://127.0.0.1:${node.port}`))
    for (const node of cluster.nodes) {
      const info = await node.cli('cluster', 'info')
      expect(info).toMatch(/^cluster_state:ok\s*$/m)
      expect(info).toMatch(/^cluster_slots_assigned:16384\s*$/m)
      expect(info).toMatch(/^cluster_known_nodes:3\s*$/m)
    }

    const [first] = cluster.nodes
    expect(await first!.cli('-c', 'set', 'foo', 'bar')).toBe('OK')
    expect(await first!.cli('-c', 'get', 'foo')).toBe('bar')

    await cluster.restartMaster(0)
    for (const node of cluster.nodes) {
      expect(await node.cli('cluster', 'info')).toMatch(/^cluster_state:ok\s*$/m)
    }
    // Every slot is served again, the restarted master's included (its keys are gone).
    for (const key of ['foo', 'a', 'b', 'c', 'd', 'e']) {
      expect(await cluster.nodes[1]!.cli('-c', 'set', key, `v-${key}`)).toBe('OK')
      expect(await first!.cli('-c', 'get', key)).toBe(`v-${key}`)
    }
  })
})
