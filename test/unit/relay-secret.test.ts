import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/parse.ts'
import { isLoopbackAddress } from '../../src/net/address.ts'
import { SECRET_HEADER, secretMatches } from '../../src/relay/secret.ts'
import { testNode } from '../helpers/fakes.ts'

function adminApp(options: { secret?: string; trustLoopback?: boolean; remote?: string }) {
  const { app, tidings } = testNode(
    {
      ...(options.secret ? { secret: options.secret } : {}),
      relay: { trustLoopback: options.trustLoopback ?? false },
    },
    { runtime: { remoteAddress: () => options.remote } }
  )
  const post = (headers: Record<string, string> = {}) =>
    app.request('/?instance=default', {
      method: 'POST',
      body: JSON.stringify({ subscribers: ['P'] }),
      headers: { 'content-type': 'application/json', ...headers },
    })
  return { app, post, tidings }
}

describe('admin secret', () => {
  it('accepts any POST when no secret is configured (Aphlict-compatible default)', async () => {
    const { post } = adminApp({})
    expect((await post()).status).toBe(200)
  })

  it('refuses a POST without the secret with 401 and a stable code', async () => {
    const { post, tidings } = adminApp({ secret: 's3cret' })
    const response = await post()
    expect(response.status).toBe(401)
    const body = (await response.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('unauthorized')
    expect(body.error.message).toContain('X-Tidings-Secret')
    expect(tidings.status('default')['messages.in']).toBe(0)
  })

  it('refuses a wrong secret and accepts the right one', async () => {
    const { post } = adminApp({ secret: 's3cret' })
    expect((await post({ [SECRET_HEADER]: 's3cre' })).status).toBe(401)
    expect((await post({ [SECRET_HEADER]: 's3cret!' })).status).toBe(401)
    expect((await post({ 'X-Tidings-Secret': 's3cret' })).status).toBe(200)
  })

  it('lets loopback posts through without the secret only when trustLoopback is on', async () => {
    expect((await adminApp({ secret: 's', remote: '127.0.0.1' }).post()).status).toBe(401)
    const trusted = { secret: 's', trustLoopback: true }
    expect((await adminApp({ ...trusted, remote: '127.0.0.1' }).post()).status).toBe(200)
    expect((await adminApp({ ...trusted, remote: '::ffff:127.0.0.5' }).post()).status).toBe(200)
    expect((await adminApp({ ...trusted, remote: '10.0.0.7' }).post()).status).toBe(401)
    expect((await adminApp({ ...trusted }).post()).status).toBe(401)
  })

  it('keeps /status/ open, as Phorge cannot send the secret', async () => {
    const { app } = adminApp({ secret: 's' })
    expect((await app.request('/status/')).status).toBe(200)
  })

  it('compares secrets exactly', async () => {
    expect(await secretMatches('abc', 'abc')).toBe(true)
    expect(await secretMatches('abd', 'abc')).toBe(false)
    expect(await secretMatches('', 'abc')).toBe(false)
    expect(await secretMatches(null, 'abc')).toBe(false)
  })

  it('knows loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
      expect(isLoopbackAddress(a)).toBe(true)
    }
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', '', undefined]) {
      expect(isLoopbackAddress(a)).toBe(false)
    }
  })
})

describe('relay configuration', () => {
  const base = {
    servers: [
      { type: 'client', port: 1 },
      { type: 'admin', port: 2 },
    ],
  }
  const failure = (relay: unknown): string => {
    try {
      parseConfig({ ...base, relay })
    } catch (error) {
      return (error as Error).message
    }
    throw new Error('expected a ConfigError')
  }

  it('fills in defaults', () => {
    expect(parseConfig(base).relay).toMatchObject({
      timeout: 5000,
      window: 16,
      queue: 1024,
      maxAge: 30_000,
      failures: 3,
      dedupSize: 100_000,
      trustLoopback: false,
    })
  })

  it('names a bad relay option', () => {
    expect(failure({ timeout: 'soon' })).toContain("Parameter 'relay.timeout' has invalid type")
    expect(failure({ window: 0 })).toContain("'relay.window'")
    expect(failure({ bogus: 1 })).toContain('Got unexpected parameters in "relay": bogus')
  })

  it('refuses a dedup memory shorter than the relay queue age', () => {
    expect(failure({ maxAge: 60_000, dedupAge: 30_000 })).toContain("'relay.dedupAge'")
    expect(failure({ retryBase: 500, retryMax: 100 })).toContain("'relay.retryMax'")
  })
})
