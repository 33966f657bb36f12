/**
 * A fake original Aphlict admin server on 127.0.0.1: AphlictRules behind node:http, relaying
 * the way Aphlict does (a new request per relay, default agent, Content-Length counted in
 * JS characters, instance concatenated unencoded, fire and forget).
 */
import { createServer, request } from 'node:http'
import { AphlictRules, type AphlictServer, type SeenRequest } from './cluster-aphlict.ts'

export async function startAphlictServer(
  fingerprint: string,
  port: number,
  peers: readonly string[]
): Promise<AphlictServer> {
  const requests: SeenRequest[] = []
  const rules = new AphlictRules(fingerprint, peers, (origin, instance, data) => {
    const { hostname, port: peerPort } = new URL(origin)
    return new Promise((resolve) => {
      const req = request(
        {
          hostname,
          port: peerPort,
          method: 'POST',
          path: `/?instance=${instance}`,
          headers: { 'Content-Type': 'application/json', 'Content-Length': data.length },
          timeout: 3000,
        },
        (res) => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => {
            body += chunk
          })
          res.on('end', () => resolve(body))
        }
      )
      // Aphlict has no error listener (an uncaught exception per relay); the fake just gives up.
      req.on('error', () => resolve(undefined))
      req.on('timeout', () => req.destroy())
      req.end(data)
    })
  })
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        contentType: req.headers['content-type'],
        contentLength: Number(req.headers['content-length']),
        bodyBytes: body.byteLength,
        fromTest: req.headers['x-test-publisher'] !== undefined,
      })
      const url = new URL(req.url ?? '/', 'http://x')
      if (req.method !== 'POST' || url.pathname !== '/') {
        res.writeHead(url.pathname === '/status/' ? 200 : 405).end()
        return
      }
      const [status, text] = rules.receive(
        url.searchParams.get('instance') || 'default',
        body.toString('utf8')
      )
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(text)
    })
  })
  await new Promise<void>((done) => server.listen(port, '127.0.0.1', done))
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    rules,
    requests,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections()
        server.close(() => done())
      }),
  }
}
