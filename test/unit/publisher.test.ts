/**
 * The publisher against real in-process tidings nodes on loopback, one address dead
 * (a port that was bound, then closed).
 */
import { createServer, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningServer } from '../../adapters/node/server.ts'
import {
  createPublisher,
  PublishError,
  type PublisherOptions,
  randomUniqueId,
  SECRET_HEADER,
} from '../../clients/publisher.ts'
import { startNode } from '../helpers/node-target.ts'
import { connect, type TestClient } from '../helpers/ws-client.ts'

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port))
  })
}

/** A loopback address nothing listens on: bound, then closed. */
async function deadAddress(): Promise<string> {
  const server = createServer()
  const port = await listen(server)
  await new Promise((resolve) => server.close(resolve))
  return `http://127.0.0.1:${port}`
}

let counter = 0
const uid = (): string => `PHID-PUB-${process.pid}-${++counter}`

async function subscribed(node: RunningServer, id: string, path = '/'): Promise<TestClient> {
  const client = await connect(`${node.url('client')}${path}`)
  client.send({ command: 'subscribe', data: [id] })
  await client.ping()
  return client
}

/** A `random` that makes the shuffle put the servers in the order given. */
const keepOrder = (): number => 0.999_999

describe('publisher against real nodes', () => {
  let live: RunningServer
  let other: RunningServer
  let dead: string
  let silent: Server
  let silentUrl: string
  const sockets = new Set<import('node:net').Socket>()

  beforeAll(async () => {
    ;[live, other] = await Promise.all([startNode(), startNode()])
    dead = await deadAddress()
    // Accepts connections and never answers: a hung server.
    silent = createServer((socket) => {
      sockets.add(socket)
      socket.on('error', () => {})
    })
    silentUrl = `http://127.0.0.1:${await listen(silent)}`
  })
  afterAll(async () => {
    for (const socket of sockets) socket.destroy()
    await Promise.all([
      live?.close(1000),
      other?.close(1000),
      new Promise((resolve) => silent?.close(resolve)),
    ])
  })

  it('delivers through a live node, adding a 32-character uniqueID last', async () => {
    const id = uid()
    const client = await subscribed(live, id)
    const publisher = createPublisher({ servers: [live.url('admin')] })
    const result = await publisher.publish({ type: 'notification', key: '7', subscribers: [id] })
    expect(result.server).toBe(live.url('admin'))
    expect(result.fingerprint).toBe(live.tidings.fingerprint)
    expect(result.uniqueID).toMatch(/^[a-z2-7]{32}$/)
    expect(result.failures).toEqual([])
    const frame = await client.next()
    expect(Object.keys(frame)).toEqual(['type', 'key', 'subscribers', 'uniqueID', 'touched'])
    expect(frame.uniqueID).toBe(result.uniqueID)
    await client.close()
  })

  it('keeps a uniqueID the caller set', async () => {
    const id = uid()
    const client = await subscribed(live, id)
    const publisher = createPublisher({ servers: [live.url('admin')] })
    const result = await publisher.publish({ subscribers: [id], uniqueID: 'mine' })
    expect(result.uniqueID).toBe('mine')
    expect((await client.next()).uniqueID).toBe('mine')
    await client.close()
  })

  it('skips a dead server, says why, and delivers through the next', async () => {
    const id = uid()
    const client = await subscribed(live, id)
    const publisher = createPublisher({
      servers: [dead, live.url('admin')],
      random: keepOrder,
    })
    const result = await publisher.publish({ n: 1, subscribers: [id] })
    expect(result.server).toBe(live.url('admin'))
    expect(result.failures).toEqual([
      { server: dead, kind: 'network', reason: expect.stringMatching(/ECONNREFUSED/) },
    ])
    expect((await client.next()).n).toBe(1)
    await client.close()
  })

  it('always gets through with one dead server, whatever the shuffle', async () => {
    const publisher = createPublisher({ servers: [dead, live.url('admin'), other.url('admin')] })
    const answered = new Set<string>()
    for (let i = 0; i < 30; i++) {
      const result = await publisher.publish({ subscribers: [uid()] })
      answered.add(result.server)
      expect(result.failures.every((failure) => failure.server === dead)).toBe(true)
    }
    // The shuffle spreads messages over both live servers.
    expect([...answered].sort()).toEqual([live.url('admin'), other.url('admin')].sort())
  })

  it('tries the servers in a shuffled order', async () => {
    const firsts = new Set<string>()
    const publisher = createPublisher({ servers: [dead, live.url('admin')] })
    for (let i = 0; i < 30; i++) {
      const result = await publisher.publish({ subscribers: [uid()] })
      firsts.add(result.failures.length === 0 ? result.server : (result.failures[0]?.server ?? ''))
    }
    expect([...firsts].sort()).toEqual([dead, live.url('admin')].sort())
  })

  it('posts to the instance it was given', async () => {
    const id = uid()
    const client = await subscribed(live, id, '/~pub-instance/')
    const publisher = createPublisher({ servers: [live.url('admin')], instance: 'pub-instance' })
    await publisher.publish({ n: 'instance', subscribers: [id] })
    expect((await client.next()).n).toBe('instance')
    await client.close()
  })

  it('gives up on a server that does not answer within timeoutMs', async () => {
    const publisher = createPublisher({
      servers: [silentUrl, live.url('admin')],
      timeoutMs: 300,
      random: keepOrder,
    })
    const result = await publisher.publish({ subscribers: [uid()] })
    expect(result.server).toBe(live.url('admin'))
    expect(result.failures).toEqual([
      { server: silentUrl, kind: 'timeout', reason: 'no answer within 300 ms' },
    ])
  })

  it('throws all_servers_failed with every reason when no server takes it', async () => {
    const publisher = createPublisher({ servers: [dead, silentUrl], timeoutMs: 300 })
    const error = await publisher.publish({ subscribers: [uid()] }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PublishError)
    const { code, failures, message } = error as PublishError
    expect(code).toBe('all_servers_failed')
    expect(failures.map((failure) => [failure.server, failure.kind]).sort()).toEqual(
      [
        [dead, 'network'],
        [silentUrl, 'timeout'],
      ].sort()
    )
    expect(message).toContain(dead)
    expect(message).toContain(silentUrl)
  })

  it('tries the next server after a non-200 answer that is not about the message', async () => {
    const publisher = createPublisher({
      servers: [`${other.url('admin')}/nowhere`, live.url('admin')],
      random: keepOrder,
    })
    const result = await publisher.publish({ subscribers: [uid()] })
    expect(result.server).toBe(live.url('admin'))
    expect(result.failures).toMatchObject([{ kind: 'status', status: 404 }])
  })

  it('stops at a server that refuses the message itself, with its error code', async () => {
    const publisher = createPublisher({
      servers: [live.url('admin'), other.url('admin')],
      instance: 'not a valid instance',
    })
    const error = await publisher.publish({ subscribers: [uid()] }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).code).toBe('message_rejected')
    expect((error as PublishError).failures).toMatchObject([
      { kind: 'status', status: 400, code: 'instance_invalid' },
    ])
  })

  it('refuses a message without a subscriber list before sending anything', async () => {
    const publisher = createPublisher({ servers: [live.url('admin')] })
    const before = live.tidings.status('default')['messages.in']
    for (const message of [{ subscribers: 'PHID-X' }, {}, { subscribers: [null] }]) {
      const error = await publisher
        .publish(message as unknown as Parameters<typeof publisher.publish>[0])
        .catch((e: unknown) => e)
      expect((error as PublishError).code).toBe('message_invalid')
      expect((error as Error).message).toContain('"subscribers"')
    }
    expect(live.tidings.status('default')['messages.in']).toBe(before)
  })

  it('sends the secret a node requires, and moves on from a node that refuses it (401)', async () => {
    const guarded = await startNode({ extra: { secret: 's3cret' } })
    try {
      const right = createPublisher({ servers: [guarded.url('admin')], secret: 's3cret' })
      expect((await right.publish({ subscribers: [uid()] })).server).toBe(guarded.url('admin'))

      const wrong = createPublisher({
        servers: [guarded.url('admin'), live.url('admin')],
        secret: 'not it',
        random: keepOrder,
      })
      const result = await wrong.publish({ subscribers: [uid()] })
      expect(result.server).toBe(live.url('admin'))
      expect(result.failures).toMatchObject([
        { server: guarded.url('admin'), kind: 'status', status: 401, code: 'unauthorized' },
      ])
    } finally {
      await guarded.close(1000)
    }
  })

  it('stops when the caller aborts', async () => {
    const publisher = createPublisher({ servers: [silentUrl], timeoutMs: 10_000 })
    const controller = new AbortController()
    const pending = publisher.publish({ subscribers: [uid()] }, { signal: controller.signal })
    setTimeout(() => controller.abort(new Error('caller gave up')), 50)
    await expect(pending).rejects.toThrow('caller gave up')
  })
})

describe('publisher: requests and options', () => {
  function recordingFetch(status = 200): {
    fetch: typeof fetch
    requests: { url: string; init: RequestInit }[]
  } {
    const requests: { url: string; init: RequestInit }[] = []
    const fetchFn = (async (url: string, init: RequestInit) => {
      requests.push({ url, init })
      return new Response(JSON.stringify({ fingerprint: 'f' }), { status })
    }) as unknown as typeof fetch
    return { fetch: fetchFn, requests }
  }

  it('sends the secret as X-Tidings-Secret, JSON, without following redirects', async () => {
    const { fetch, requests } = recordingFetch()
    const publisher = createPublisher({
      servers: ['http://127.0.0.1:1/base'],
      instance: 'a b',
      secret: 's3cret',
      fetch,
    })
    await publisher.publish({ subscribers: ['P'] })
    const [request] = requests
    expect(request?.url).toBe('http://127.0.0.1:1/base/?instance=a%20b')
    expect(request?.init).toMatchObject({
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/json', [SECRET_HEADER]: 's3cret' },
    })
    expect(SECRET_HEADER).toBe('X-Tidings-Secret')
  })

  it('sends no secret header when no secret is set', async () => {
    const { fetch, requests } = recordingFetch()
    await createPublisher({ servers: ['http://127.0.0.1:1'], fetch }).publish({ subscribers: [] })
    expect(Object.keys(requests[0]?.init.headers as object)).toEqual(['content-type'])
  })

  it('makes distinct uniqueIDs from [a-z2-7]', () => {
    const ids = new Set(Array.from({ length: 1000 }, randomUniqueId))
    expect(ids.size).toBe(1000)
    for (const id of ids) expect(id).toMatch(/^[a-z2-7]{32}$/)
  })

  const cases: [Partial<PublisherOptions>, string][] = [
    [{ servers: [] }, 'servers'],
    [{ servers: ['ws://127.0.0.1:1'] }, 'servers[0]'],
    [{ servers: ['http://127.0.0.1:1', 'not a url'] }, 'servers[1]'],
    [{ servers: ['http://127.0.0.1:1/?instance=x'] }, 'servers[0]'],
    [{ timeoutMs: 0 }, 'timeoutMs'],
    [{ secret: '' }, 'secret'],
    [{ instance: '' }, 'instance'],
  ]
  it.each(cases)('refuses options %j naming %s', (options, field) => {
    expect(() => createPublisher({ servers: ['http://127.0.0.1:1'], ...options })).toThrow(
      expect.objectContaining({
        code: 'options_invalid',
        message: expect.stringContaining(`"${field}"`),
      })
    )
  })
})
