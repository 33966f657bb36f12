import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { StartupError } from '../../adapters/node/listen.ts'
import { startServer } from '../../adapters/node/server.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { silentLogger, startNode } from '../helpers/node-target.ts'
import { tempDir } from '../helpers/process.ts'
import { selfSignedCert } from '../helpers/tls.ts'
import { connect, eventually } from '../helpers/ws-client.ts'

describe('Node server', { timeout: 20_000 }, () => {
  it('closes every client socket with 1001 on close()', async () => {
    const server = await startNode()
    const clients = await Promise.all([
      connect(`${server.url('client')}/`),
      connect(`${server.url('client')}/~b/`),
    ])
    await server.close(2000)
    for (const client of clients) expect((await client.closed).code).toBe(1001)
  })

  it.each([1, 2])(
    'serves WebSocket clients over TLS when ssl.key and ssl.cert are set (processes: %i)',
    async (processes) => {
      const { key, cert } = selfSignedCert(tempDir())
      const config = parseConfig({
        servers: [
          { type: 'client', port: 0, listen: '127.0.0.1', 'ssl.key': key, 'ssl.cert': cert },
          { type: 'admin', port: 0, listen: '127.0.0.1' },
        ],
        // With workers, the primary accepts the raw TCP connection and a worker does the TLS.
        processes,
      })
      const server = await startServer({ config, logger: silentLogger })
      try {
        expect(server.url('client')).toMatch(/^wss:/)
        const ws = new WebSocket(`${server.url('client')}/`, { rejectUnauthorized: false })
        const pong = await new Promise<string>((resolve, reject) => {
          ws.once('error', reject)
          ws.once('open', () => ws.send('{"command":"ping","data":null}'))
          ws.once('message', (data) => resolve(data.toString()))
        })
        expect(pong).toBe('{"type":"pong"}')
        ws.close()
      } finally {
        await server.close(1000)
      }
    }
  )

  it('refuses to start with a clear StartupError when an SSL file is missing', async () => {
    const config = parseConfig({
      servers: [
        {
          type: 'client',
          port: 0,
          listen: '127.0.0.1',
          'ssl.key': '/nonexistent/key.pem',
          'ssl.cert': '/nonexistent/cert.pem',
        },
        { type: 'admin', port: 0, listen: '127.0.0.1' },
      ],
    })
    const attempt = startServer({ config, logger: silentLogger })
    await expect(attempt).rejects.toBeInstanceOf(StartupError)
    await expect(attempt).rejects.toThrow(
      'Unable to read "ssl.cert" file "/nonexistent/cert.pem" for the client server (at index "0"): ENOENT.'
    )
  })

  it('binds an admin server whose listen is "" to loopback, as if it were unset', async () => {
    const server = await startServer({
      config: parseConfig({
        servers: [
          { type: 'client', port: 0, listen: '127.0.0.1' },
          { type: 'admin', port: 0, listen: '' },
        ],
      }),
      logger: silentLogger,
    })
    try {
      expect(server.servers.map((bound) => [bound.type, bound.host])).toEqual([
        ['client', '127.0.0.1'],
        ['admin', '127.0.0.1'],
      ])
      expect((await fetch(`${server.url('admin')}/status/`)).status).toBe(200)
    } finally {
      await server.close(1000)
    }
  })

  it('trims history by age while idle and forgets instances that hold nothing', async () => {
    const server = await startNode({ history: { age: 100 } })
    try {
      const response = await fetch(`${server.url('admin')}/?instance=idle`, {
        method: 'POST',
        body: '{"subscribers":["x"]}',
      })
      expect(response.status).toBe(200)
      expect(server.tidings.hub.find('idle')?.history.size).toBe(1)
      await eventually(
        () => server.tidings.hub.find('idle'),
        (instance) => instance === undefined
      )
    } finally {
      await server.close(1000)
    }
  })

  it('refuses an upgrade whose ~instance is not a valid name with 400', async () => {
    const server = await startNode()
    try {
      const ws = new WebSocket(`${server.url('client')}/~${'x'.repeat(200)}/`)
      const status = await new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0))
        ws.once('error', () => {})
      })
      expect(status).toBe(400)
    } finally {
      await server.close(1000)
    }
  })
})
