import { describe, expect, it } from 'vitest'
import { FakeSocket, testNode } from '../helpers/fakes.ts'

function setup(remote?: string) {
  const { clock, logger, tidings, app } = testNode(
    { limits: { bodyBytes: 256 } },
    {
      fingerprint: 'fpfpfpfpfpfpfpfp',
      ...(remote ? { runtime: { remoteAddress: () => remote } } : {}),
    }
  )
  const post = (body: string, query = '') => app.request(`/${query}`, { method: 'POST', body })
  return { clock, logger, tidings, app, post }
}

describe('createAdminApp', () => {
  it('delivers a POST to subscribed sockets and answers the receipt', async () => {
    const { tidings, post } = setup()
    const socket = new FakeSocket()
    tidings.hub.subscribe(tidings.hub.connect(socket, 'default'), ['P'])
    const response = await post('{"key":"1","subscribers":["P"],"uniqueID":"u1"}')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/application\/json/)
    expect(await response.json()).toEqual({ fingerprint: 'fpfpfpfpfpfpfpfp' })
    expect(socket.sent.map((m) => m.text)).toEqual([
      '{"key":"1","subscribers":["P"],"uniqueID":"u1","touched":["fpfpfpfpfpfpfpfp"]}',
    ])
  })

  it('keeps an existing touched key in place and appends the fingerprint', async () => {
    const { tidings, post } = setup()
    const socket = new FakeSocket()
    tidings.hub.subscribe(tidings.hub.connect(socket, 'default'), ['P'])
    await post('{"touched":["other"],"subscribers":["P"],"z":1,"uniqueID":"u2"}')
    expect(socket.sent[0]?.text).toBe(
      '{"touched":["other","fpfpfpfpfpfpfpfp"],"subscribers":["P"],"z":1,"uniqueID":"u2"}'
    )
  })

  it('serialises a message once however many sockets receive it', async () => {
    const { tidings, post } = setup()
    const sockets = Array.from({ length: 5 }, () => new FakeSocket())
    for (const socket of sockets)
      tidings.hub.subscribe(tidings.hub.connect(socket, 'default'), ['P'])
    await post('{"subscribers":["P"]}')
    const shared = sockets[0]?.sent[0]
    for (const socket of sockets) expect(socket.sent[0]).toBe(shared)
  })

  it('reports status uptime and history age from the clock', async () => {
    const { clock, app, post } = setup()
    await post('{"subscribers":["P"]}', '?instance=i')
    clock.advance(1500)
    const body = await (await app.request('/status/?instance=i')).json()
    expect(body).toMatchObject({
      uptime: 1500,
      'messages.in': 1,
      'history.size': 1,
      'history.age': 1500,
    })
    clock.advance(60_000)
    expect(await (await app.request('/status/?instance=i')).json()).toMatchObject({
      'history.size': 0,
      'history.age': null,
    })
  })

  it('answers /status/ to any method, as Aphlict does', async () => {
    const { app } = setup()
    for (const method of ['GET', 'POST', 'DELETE']) {
      expect((await app.request('/status/', { method })).status).toBe(200)
    }
  })

  it('refuses a body over the limit with 413 and a coded error, streaming or not', async () => {
    const { post, app } = setup()
    const big = JSON.stringify({ subscribers: ['P'], pad: 'x'.repeat(300) })
    const declared = await post(big)
    expect(declared.status).toBe(413)
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(64)))
        controller.close()
      },
    })
    const chunked = await app.request('/', {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit)
    expect(chunked.status).toBe(413)
    expect(await chunked.json()).toMatchObject({ error: { code: 'body_too_large' } })
  })

  it('refuses invalid UTF-8 with 400 body_not_utf8', async () => {
    const { app } = setup()
    const response = await app.request('/', {
      method: 'POST',
      body: new Uint8Array([0x7b, 0xff, 0x7d]),
    })
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ error: { code: 'body_not_utf8' } })
  })

  it('logs rejected bodies once without a stack and counts them', async () => {
    const { post, logger, tidings } = setup()
    await post('nope')
    expect(tidings.rejected.badBodies).toBe(1)
    expect(logger.lines).toHaveLength(1)
    expect(logger.lines[0]).toMatch(/Bad Request! Request body is not valid JSON/)
    expect(logger.lines[0]).not.toMatch(/\n\s+at /)
  })

  it('logs the peer address of a bad request, not a client-supplied X-Forwarded-For', async () => {
    const { app, logger } = setup('127.0.0.9')
    await app.request('/', {
      method: 'POST',
      body: 'nope',
      headers: { 'x-forwarded-for': 'forged' },
    })
    expect(logger.lines).toEqual([expect.stringMatching(/^127\.0\.0\.9 Bad Request! /)])
    expect(logger.lines[0]).not.toContain('forged')
  })

  it('treats a __proto__ key as plain data', async () => {
    const { tidings, post } = setup()
    const socket = new FakeSocket()
    tidings.hub.subscribe(tidings.hub.connect(socket, 'default'), ['P'])
    const response = await post('{"__proto__":{"polluted":true},"subscribers":["P"]}')
    expect(response.status).toBe(200)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(socket.sent[0]?.text).toContain('"__proto__":{"polluted":true}')
  })
})
