/**
 * The relay against peers that misbehave, over real loopback sockets: a peer that accepts
 * and never answers, a refused port, an Aphlict-rule peer in a mixed cluster, the shared
 * secret, and the bounded flush on shutdown. Tidings nodes run in-process here.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type RunningServer, startServer } from '../../adapters/node/server.ts'
import { parseConfig } from '../../src/config/parse.ts'
import {
  freePorts,
  type NodePorts,
  nodePorts,
  peersOf,
  postMessage,
  subscriber,
} from '../helpers/cluster.ts'
import { startAphlictServer } from '../helpers/cluster-aphlict-server.ts'
import { silentLogger } from '../helpers/node-target.ts'
import { eventually } from '../helpers/ws-client.ts'

const hasOpenssl = spawnSync('openssl', ['version']).status === 0

/** A throwaway CA and a certificate for 127.0.0.1 signed by it, made with the openssl CLI. */
function makeCertificates(dir: string): { ca: string; key: string; cert: string } {
  const run = (...args: string[]) => {
    const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' })
    if (result.status !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr}`)
  }
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  run(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=tidings test CA'
  )
  run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n')
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '1',
    '-extfile',
    'san.ext'
  )
  return { ca: join(dir, 'ca.pem'), key: join(dir, 'server.key'), cert: join(dir, 'server.pem') }
}

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup().catch(() => {})))
})

async function node(
  ports: NodePorts,
  cluster: { port: number; secret?: string }[],
  extra: Record<string, unknown> = {}
): Promise<RunningServer> {
  const config = parseConfig({
    servers: [
      { type: 'client', port: ports.client, listen: '127.0.0.1' },
      { type: 'admin', port: ports.admin, listen: '127.0.0.1' },
    ],
    cluster: cluster.map(({ port, secret }) => ({
      host: '127.0.0.1',
      port,
      protocol: 'http',
      ...(secret ? { secret } : {}),
    })),
    ...extra,
  })
  const server = await startServer({ config, logger: silentLogger })
  cleanups.push(() => server.close(1000))
  return server
}

describe('relay faults', { timeout: 30_000 }, () => {
  it('times out relays to a peer that never answers and keeps its queue and sockets bounded', async () => {
    const open = new Set<Socket>()
    let maxOpen = 0
    let accepted = 0
    const silent = createServer((socket) => {
      accepted++
      open.add(socket)
      maxOpen = Math.max(maxOpen, open.size)
      socket.on('close', () => open.delete(socket))
      socket.on('error', () => {})
      // Read (and ignore) the request, never answer: a hung application behind a live kernel.
      // Reading lets the listener see our side close a connection it gave up on.
      socket.resume()
    })
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done))
    cleanups.push(
      () =>
        new Promise((done) => {
          for (const socket of open) socket.destroy()
          silent.close(done)
        })
    )
    const silentPort = (silent.address() as { port: number }).port
    const [refusedPort] = await freePorts(1)
    const [ports] = await nodePorts(1)
    const server = await node(
      ports as NodePorts,
      [{ port: silentPort }, { port: refusedPort as number }],
      {
        relay: {
          timeout: 300,
          connectTimeout: 300,
          window: 2,
          queue: 20,
          failures: 2,
          retryBase: 20,
          retryMax: 100,
          maxAge: 2000,
        },
      }
    )
    const sub = await subscriber(server.url('client'), ['P'])
    cleanups.push(() => sub.client.close())
    for (let i = 0; i < 200; i++) {
      // Answered long before the 300 ms relay timeout could matter.
      expect(await postMessage(server.url('admin'), { key: `k${i}`, subscribers: ['P'] })).toBe(200)
    }
    await eventually(
      () => sub.frames.length,
      (n) => n === 200
    )
    const peers = await eventually(
      () => peersOf(server.url('admin')),
      (list) => (list[0]?.failed ?? 0) >= 3 && ['down', 'probing'].includes(list[1]?.state ?? '')
    )
    const [hung, refused] = peers
    expect(hung?.lastError).toBe('timed out after 300 ms')
    expect(hung?.queue).toBeLessThanOrEqual(20)
    expect(hung?.inFlight).toBeLessThanOrEqual(2)
    expect(hung?.relayed).toBe(0)
    expect(
      (hung?.dropped ?? 0) + (hung?.queue ?? 0) + (hung?.inFlight ?? 0)
    ).toBeGreaterThanOrEqual(200 - 10)
    expect(refused?.lastError).toMatch(/ECONNREFUSED/)
    expect(refused?.queue).toBeLessThanOrEqual(20)
    // Never more connections than the window, however many relays timed out.
    expect(maxOpen).toBeLessThanOrEqual(2)
    expect(accepted).toBeGreaterThan(1)
    await server.close(1000)
    await eventually(
      () => open.size,
      (n) => n === 0
    )
  })

  it('interoperates with an Aphlict node in a mixed cluster, both ways', async () => {
    const [p1, p2] = await nodePorts(2)
    const [aphlictPort] = (await freePorts(1)) as [number]
    const mesh = [
      { port: p1?.admin as number },
      { port: p2?.admin as number },
      { port: aphlictPort },
    ]
    const aphlict = await startAphlictServer(
      'AphlictFakeNode9',
      aphlictPort,
      mesh.map(({ port }) => `http://127.0.0.1:${port}`)
    )
    cleanups.push(() => aphlict.close())
    const t1 = await node(p1 as NodePorts, mesh)
    const t2 = await node(p2 as NodePorts, mesh)
    const subs = [
      await subscriber(t1.url('client'), ['P']),
      await subscriber(t2.url('client'), ['P']),
    ]
    cleanups.push(() => Promise.all(subs.map((sub) => sub.client.close())))
    const text = 'Ünïcödé ✓ 🚀'
    await postMessage(t1.url('admin'), { key: 'a', text, subscribers: ['P'], uniqueID: 'ua' })
    await postMessage(
      aphlict.url,
      { key: 'b', subscribers: ['P'], uniqueID: 'ub' },
      { headers: { 'x-test-publisher': '1' } }
    )
    await postMessage(t2.url('admin'), { key: 'c', text, subscribers: ['P'] })
    for (const sub of subs) {
      await eventually(
        () => ['a', 'b', 'c'].map((key) => sub.count(key)),
        (counts) => counts.every((n) => n >= 1)
      )
    }
    await new Promise((done) => setTimeout(done, 300))
    for (const sub of subs) {
      expect(['a', 'b', 'c'].map((key) => sub.count(key))).toEqual([1, 1, 1])
    }
    const delivered = aphlict.rules.delivered.map((d) => JSON.parse(d.text))
    expect(delivered.find((m) => m.key === 'a')?.text).toBe(text)
    expect(delivered.find((m) => m.key === 'c')?.text).toBe(text)
    // What tidings sent it is what Aphlict expects: byte-exact lengths, JSON, instance query.
    const fromTidings = aphlict.requests.filter((r) => !r.fromTest)
    // Each tidings node said hello once, as a status request Aphlict answers as usual.
    expect(fromTidings.filter((r) => r.method === 'GET').map((r) => r.url)).toEqual([
      '/status/',
      '/status/',
    ])
    const relayed = fromTidings.filter((r) => r.method === 'POST')
    expect(relayed.length).toBeGreaterThan(0)
    for (const request of relayed) {
      expect(request.url).toBe('/?instance=default')
      expect(request.contentType).toBe('application/json')
      expect(request.contentLength).toBe(request.bodyBytes)
    }
    expect(aphlict.rules.peers.map((p) => p.fingerprint)).toEqual([
      t1.tidings.fingerprint,
      t2.tidings.fingerprint,
      'AphlictFakeNode9',
    ])
    expect((await peersOf(t1.url('admin')))[2]?.fingerprint).toBe('AphlictFakeNode9')
  })

  it('refuses relays and posts without the secret, and relays with it', async () => {
    const [pa, pb] = (await nodePorts(2)) as [NodePorts, NodePorts]
    const a = await node(pa, [{ port: pb.admin }], { secret: 'k3y' })
    const b = await node(pb, [{ port: pa.admin, secret: 'wrong' }], { secret: 'k3y' })
    const subA = await subscriber(a.url('client'), ['P'])
    const subB = await subscriber(b.url('client'), ['P'])
    cleanups.push(() => Promise.all([subA.client.close(), subB.client.close()]))
    const headers = { 'x-tidings-secret': 'k3y' }
    expect(await postMessage(a.url('admin'), { key: 'x', subscribers: ['P'] })).toBe(401)
    expect(await postMessage(a.url('admin'), { key: 'ok', subscribers: ['P'] }, { headers })).toBe(
      200
    )
    await eventually(
      () => subB.count('ok'),
      (n) => n === 1
    )
    expect(await postMessage(b.url('admin'), { key: 'no', subscribers: ['P'] }, { headers })).toBe(
      200
    )
    const [peerA] = await eventually(
      () => peersOf(b.url('admin')),
      (list) => list[0]?.lastError === 'answered HTTP 401'
    )
    expect(peerA?.relayed).toBe(0)
    expect(subA.count('no')).toBe(0)
    expect(subA.count('x')).toBe(0)
  })

  it.skipIf(!hasOpenssl)(
    'verifies https peers: refuses an unknown CA, trusts one named by relay.ca',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tidings-tls-'))
      cleanups.push(async () => rmSync(dir, { recursive: true, force: true }))
      const { ca, key, cert } = makeCertificates(dir)
      const [pb, pa, pc] = (await nodePorts(3)) as [NodePorts, NodePorts, NodePorts]
      const config = parseConfig({
        servers: [
          { type: 'client', port: pb.client, listen: '127.0.0.1' },
          { type: 'admin', port: pb.admin, listen: '127.0.0.1', 'ssl.key': key, 'ssl.cert': cert },
        ],
      })
      const b = await startServer({ config, logger: silentLogger })
      cleanups.push(() => b.close(1000))
      const subB = await subscriber(b.url('client'), ['P'])
      cleanups.push(() => subB.client.close())
      const https = (extra: Record<string, unknown>) => ({
        cluster: [{ host: '127.0.0.1', port: pb.admin, protocol: 'https' }],
        ...extra,
      })
      const untrusting = await node(pa, [], https({ relay: { failures: 1 } }))
      const trusting = await node(pc, [], https({ relay: { ca } }))
      await postMessage(untrusting.url('admin'), { key: 'no', subscribers: ['P'] })
      await postMessage(trusting.url('admin'), { key: 'yes', subscribers: ['P'] })
      await eventually(
        () => subB.count('yes'),
        (n) => n === 1
      )
      const [refused] = await eventually(
        () => peersOf(untrusting.url('admin')),
        (list) => list[0]?.lastError !== null && list[0]?.lastError !== undefined
      )
      expect(refused?.lastError).toMatch(/certificate/i)
      expect(refused?.relayed).toBe(0)
      expect(subB.count('no')).toBe(0)
      expect((await peersOf(trusting.url('admin')))[0]?.fingerprint).toBe(b.tidings.fingerprint)
      await expect(
        node(
          (await nodePorts(1))[0] as NodePorts,
          [],
          https({ relay: { ca: join(dir, 'nope.pem') } })
        )
      ).rejects.toThrow(/Unable to read "relay.ca" file ".*nope.pem": ENOENT/)
    }
  )

  it('flushes queued relays before it stops on close', async () => {
    const received: string[] = []
    const [ports] = (await nodePorts(1)) as [NodePorts]
    const slow = createHttpServer((req, res) => {
      let body = ''
      req.on('data', (chunk) => {
        body += chunk
      })
      req.on('end', () => {
        // The node's hello is a status request: answered, not a relay.
        if (req.method !== 'POST') {
          res.end('{}')
          return
        }
        setTimeout(() => {
          received.push(JSON.parse(body).key)
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end('{"fingerprint":"SlowPeerSlowPeer"}')
        }, 50)
      })
    })
    await new Promise<void>((done) => slow.listen(0, '127.0.0.1', done))
    cleanups.push(
      () =>
        new Promise((done) => {
          slow.closeAllConnections()
          slow.close(done)
        })
    )
    const port = (slow.address() as { port: number }).port
    const server = await node(ports, [{ port }], { relay: { window: 2, flushTimeout: 5000 } })
    for (let i = 0; i < 12; i++) {
      await postMessage(server.url('admin'), { key: `f${i}`, subscribers: ['P'] })
    }
    // 12 relays at 2 in flight and 50 ms each: most are still queued when close starts.
    await server.close(5000)
    expect(received.sort()).toEqual(Array.from({ length: 12 }, (_, i) => `f${i}`).sort())
  })
})
