/**
 * A mixed cluster on loopback: a tidings Node server (where Phorge posts) and the Worker (where
 * browsers connect, over two shards) list each other under `cluster`, each with the other's
 * secret. A message posted to either reaches the clients of both exactly once, and nothing loops.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningServer } from '../../adapters/node/server.ts'
import { post, status, type Target } from '../contract/target.ts'
import { freePorts } from '../helpers/cluster.ts'
import { startNode } from '../helpers/node-target.ts'
import { type RunningWorker, startWorker, TEST_SECRET } from '../helpers/worker-target.ts'
import { connect, eventually, type TestClient } from '../helpers/ws-client.ts'

const NODE_SECRET = 'node-secret-for-loopback-only'
const RELAY = { timeout: 2000, retryBase: 20, retryMax: 200, maxAge: 5000 }
/** workerd evicts an idle Durable Object after about 10 s. */
const IDLE_MS = 13_000
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms))

describe('workers adapter: relay with a Node server', { timeout: 60_000 }, () => {
  let node: RunningServer
  let worker: RunningWorker
  let toNode: Target
  let toWorker: Target

  beforeAll(async () => {
    const [nodeAdmin] = (await freePorts(1)) as [number]
    worker = await startWorker({
      shards: 2,
      config: {
        cluster: [{ host: '127.0.0.1', port: nodeAdmin, protocol: 'http', secret: NODE_SECRET }],
        relay: RELAY,
      },
    })
    const workerPort = Number(new URL(worker.origin).port)
    node = await startNode({
      extra: {
        servers: [
          { type: 'client', port: 0, listen: '127.0.0.1' },
          { type: 'admin', port: nodeAdmin, listen: '127.0.0.1' },
        ],
        secret: NODE_SECRET,
        cluster: [{ host: '127.0.0.1', port: workerPort, protocol: 'http', secret: TEST_SECRET }],
        relay: RELAY,
      },
    })
    toNode = {
      clientUrl: node.url('client'),
      adminUrl: node.url('admin'),
      adminHeaders: { 'X-Tidings-Secret': NODE_SECRET },
      close: async () => {},
    }
    toWorker = {
      clientUrl: worker.origin.replace(/^http/, 'ws'),
      adminUrl: worker.origin,
      adminHeaders: { 'X-Tidings-Secret': TEST_SECRET },
      close: async () => {},
    }
  })
  afterAll(async () => {
    await Promise.all([node?.close(1000), worker?.dispose()])
  })

  async function subscriber(target: Target, id: string): Promise<TestClient> {
    const client = await connect(`${target.clientUrl}/~mixed/`)
    client.send({ command: 'subscribe', data: [id] })
    await client.ping()
    return client
  }

  it('carries a message posted to the Node server to browsers on the Worker, and back', async () => {
    const onNode = await subscriber(toNode, 'PHID-MIX')
    // Consecutive upgrades land on consecutive shards: one client on each.
    const onEdge = await subscriber(toWorker, 'PHID-MIX')
    const onOtherShard = await subscriber(toWorker, 'PHID-MIX')

    // As Phorge posts: to the Node server on loopback, with a uniqueID.
    const fromPhorge = await post(
      toNode,
      { key: 'p1', subscribers: ['PHID-MIX'], uniqueID: 'u-mixed-1' },
      '?instance=mixed'
    )
    expect(fromPhorge.status).toBe(200)
    const nodeFingerprint = (fromPhorge.json as { fingerprint: string }).fingerprint
    expect((await onNode.next()).key).toBe('p1')
    const relayed = await onEdge.next()
    expect(relayed.key).toBe('p1')
    const touched = relayed.touched as string[]
    expect(touched).toHaveLength(2)
    expect(touched[0]).toBe(nodeFingerprint)
    const edgeFingerprint = touched[1] as string
    expect(edgeFingerprint).not.toBe(nodeFingerprint)
    expect(await onOtherShard.next()).toEqual(relayed)

    // And the reverse, without a uniqueID: the Worker draws one, the same on every shard and peer.
    const fromEdge = await post(
      toWorker,
      { key: 'e1', subscribers: ['PHID-MIX'] },
      '?instance=mixed'
    )
    expect((fromEdge.json as { fingerprint: string }).fingerprint).toBe(edgeFingerprint)
    const onEdgeFrame = await onEdge.next()
    const uniqueID = onEdgeFrame.uniqueID as string
    expect(uniqueID).toMatch(/^[a-z2-7]{32}$/)
    expect(onEdgeFrame).toEqual({
      key: 'e1',
      subscribers: ['PHID-MIX'],
      uniqueID,
      touched: [edgeFingerprint],
    })
    expect(await onOtherShard.next()).toEqual(onEdgeFrame)
    expect(await onNode.next()).toEqual({
      key: 'e1',
      subscribers: ['PHID-MIX'],
      uniqueID,
      touched: [edgeFingerprint, nodeFingerprint],
    })

    // Exactly once: nothing comes back around.
    await Promise.all([onNode, onEdge, onOtherShard].map((client) => client.silence(500)))
    expect((await status(toWorker, 'mixed'))['shards.active']).toEqual([1, 1])
    await Promise.all([onNode, onEdge, onOtherShard].map((client) => client.close()))
  })

  it('keeps relaying messages without a uniqueID after the Worker wakes from hibernation', async () => {
    const onNode = await subscriber(toNode, 'PHID-WAKE')
    const onEdge = await subscriber(toWorker, 'PHID-WAKE')
    // No uniqueID: the Worker draws a random one for each message.
    await post(toWorker, { key: 'w1', subscribers: ['PHID-WAKE'] }, '?instance=mixed')
    expect((await onNode.next()).key).toBe('w1')
    expect((await onEdge.next()).key).toBe('w1')
    await onNode.ping()

    await sleep(IDLE_MS)
    const woken = await status(toWorker, 'mixed')
    expect(woken['shards.restored']).toContain(1)
    // The node still remembers the first message's id; the second's is new.
    await post(toWorker, { key: 'w2', subscribers: ['PHID-WAKE'] }, '?instance=mixed')
    expect((await onEdge.next()).key).toBe('w2')
    expect((await onNode.next()).key).toBe('w2')
    await Promise.all([onNode.close(), onEdge.close()])
  })

  it('reports the Node peer, with the fingerprint it learned, in the Worker status', async () => {
    const edge = await eventually(
      () => status(toWorker, 'mixed'),
      (body) =>
        Array.isArray(body.cluster) && (body.cluster as { state: string }[])[0]?.state === 'up'
    )
    const peers = edge.cluster as { peer: string; fingerprint: string; relayed: number }[]
    expect(peers[0]?.fingerprint).toBe(node.tidings.fingerprint)
    expect(peers[0]?.relayed).toBeGreaterThanOrEqual(1)
    expect(edge.fingerprint).toEqual(expect.any(String))
  })
})
