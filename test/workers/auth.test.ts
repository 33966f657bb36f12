/**
 * The edge endpoint is public: admin and relay requests need the deployment secret in
 * X-Tidings-Secret, plain GETs are the client port's 501, a deployment without a secret
 * refuses every admin request, and only an explicitly open one (local development) serves
 * them without it. A bad configuration answers 500 with a coded error naming the variable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { post, type Target } from '../contract/target.ts'
import { type RunningWorker, startWorker, TEST_SECRET } from '../helpers/worker-target.ts'
import { connect } from '../helpers/ws-client.ts'

/** The HTTP status (101 when it upgraded) and body of a WebSocket upgrade from `origin`. */
function upgradeStatus(url: string, origin: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { origin, handshakeTimeout: 3000 })
    ws.on('open', () => {
      ws.close()
      resolve({ status: 101, body: '' })
    })
    ws.on('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString()
      })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
    })
    ws.on('error', reject)
  })
}

const asTarget = (worker: RunningWorker, headers: Record<string, string> = {}): Target => ({
  clientUrl: worker.origin.replace(/^http/, 'ws'),
  adminUrl: worker.origin,
  adminHeaders: headers,
  close: () => worker.dispose(),
})

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  return ((await response.json()) as { error: { code: string; message: string } }).error
}

describe('workers adapter: admin secret', { timeout: 30_000 }, () => {
  let worker: RunningWorker
  beforeAll(async () => {
    worker = await startWorker({ config: { origins: ['https://phorge.example.org'] } })
  })
  afterAll(async () => {
    await worker?.dispose()
  })

  it('refuses a POST without the secret or with a wrong one with 401 unauthorized', async () => {
    const refused: Record<string, string>[] = [
      {},
      { 'X-Tidings-Secret': 'wrong' },
      { 'X-Tidings-Secret': '' },
    ]
    for (const headers of refused) {
      const reply = await post(asTarget(worker, headers), { subscribers: ['P'] })
      expect(reply.status).toBe(401)
      expect((reply.json as { error: { code: string } }).error.code).toBe('unauthorized')
    }
    const ok = await post(asTarget(worker, { 'X-Tidings-Secret': TEST_SECRET }), {
      subscribers: ['P'],
    })
    expect(ok.status).toBe(200)
  })

  it('does not deliver a message refused for its secret', async () => {
    const client = await connect(`${worker.origin.replace(/^http/, 'ws')}/`)
    client.send({ command: 'subscribe', data: ['PHID-AUTH'] })
    await client.ping()
    await post(asTarget(worker, { 'X-Tidings-Secret': 'wrong' }), { subscribers: ['PHID-AUTH'] })
    await client.silence()
    await client.close()
  })

  it('refuses /status/ with a wrong secret, and answers a plain GET as the client port', async () => {
    const wrong = await fetch(`${worker.origin}/status/`, {
      headers: { 'X-Tidings-Secret': 'wrong' },
    })
    expect(wrong.status).toBe(401)
    expect((await errorOf(wrong)).message).toMatch(/X-Tidings-Secret/)
    const plain = await fetch(`${worker.origin}/status/`)
    expect(plain.status).toBe(501)
    const right = await fetch(`${worker.origin}/status/`, {
      headers: { 'X-Tidings-Secret': TEST_SECRET },
    })
    expect(right.status).toBe(200)
  })

  it('refuses upgrades from browser origins not in "origins" with 403', async () => {
    const url = `${worker.origin.replace(/^http/, 'ws')}/`
    const refused = await upgradeStatus(url, 'https://evil.example')
    expect(refused.status).toBe(403)
    expect(JSON.parse(refused.body).error.code).toBe('origin_not_allowed')
    expect((await upgradeStatus(url, 'https://phorge.example.org')).status).toBe(101)
  })
})

describe('workers adapter: deployments without a usable secret', { timeout: 30_000 }, () => {
  it('refuses every admin request when no TIDINGS_SECRET is set', async () => {
    const worker = await startWorker({ secret: null })
    try {
      const reply = await post(asTarget(worker, { 'X-Tidings-Secret': 'anything' }), {
        subscribers: ['P'],
      })
      expect(reply.status).toBe(401)
      expect((reply.json as { error: { message: string } }).error.message).toMatch(/TIDINGS_SECRET/)
    } finally {
      await worker.dispose()
    }
  })

  it('serves admin requests without a secret only when TIDINGS_INSECURE_OPEN=1', async () => {
    const worker = await startWorker({ secret: null, open: true })
    try {
      const client = await connect(`${worker.origin.replace(/^http/, 'ws')}/`)
      client.send({ command: 'subscribe', data: ['PHID-OPEN'] })
      await client.ping()
      const reply = await post(asTarget(worker), { open: 1, subscribers: ['PHID-OPEN'] })
      expect(reply.status).toBe(200)
      expect((await client.next()).open).toBe(1)
      const status = await fetch(`${worker.origin}/status/`)
      expect(status.status).toBe(200)
      expect(await status.json()).toMatchObject({ 'messages.in': 1 })
      await client.close()
    } finally {
      await worker.dispose()
    }
  })

  it('answers 500 config_invalid naming the variable when the configuration is unusable', async () => {
    // The worker logs the refusal as an error; this test expects it, so keep it off the output.
    const worker = await startWorker({ open: true, logLevel: 'none' })
    try {
      const reply = await fetch(`${worker.origin}/status/`)
      expect(reply.status).toBe(500)
      const error = await errorOf(reply)
      expect(error.code).toBe('config_invalid')
      expect(error.message).toMatch(/TIDINGS_INSECURE_OPEN and TIDINGS_SECRET/)
    } finally {
      await worker.dispose()
    }
  })
})
