/**
 * `npm run demo`: a page that subscribes with tidings/browser and shows messages as they
 * arrive. With no options it starts a tidings node on loopback; `--client`/`--admin` point
 * it at servers that are already running instead. The page's "Publish" button goes through
 * this server, which posts with tidings/publisher.
 *
 *   npm run demo -- [--port 8080] [--host 127.0.0.1] [--client ws://host:22280] [--admin http://host:22281]
 *                   [--instance NAME] [--subscriber ID]
 */
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { type RunningServer, startServer } from '../../adapters/node/server.ts'
import { createPublisher, PublishError } from '../../clients/publisher.ts'
import { bundleBrowserClient } from '../../scripts/build.ts'
import { parseConfig } from '../../src/config/parse.ts'

const HERE = resolve(fileURLToPath(import.meta.url), '..')

export interface DemoOptions {
  /** Client server URLs the page connects to (with the `/~instance/` path if any). */
  servers: string[]
  /** Admin server URLs for the page's Publish button; none hides it. */
  adminServers?: string[]
  /** Instance the Publish button posts to. */
  instance?: string | undefined
  /** Ids the page subscribes to from the start. */
  subscriptions?: string[]
  /** Extra `createClient` options (JSON: backoff, replayWindowMs, pingIntervalMs, …). */
  clientOptions?: Record<string, unknown>
  /** Shown on the page as a way to publish from a shell. */
  shellCommand?: string
  host?: string
  port?: number
}

export interface Demo {
  /** The page, e.g. `http://127.0.0.1:8080/`. */
  url: string
  close(): Promise<void>
}

const TYPES: Record<string, string> = {
  '/': 'text/html; charset=utf-8',
  '/demo.js': 'text/javascript; charset=utf-8',
  '/tidings-browser.js': 'text/javascript; charset=utf-8',
  '/config.json': 'application/json',
}

async function readJson(request: IncomingMessage, limit = 16 * 1024): Promise<unknown> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of request) {
    size += (chunk as Buffer).byteLength
    if (size > limit) throw new Error('body too large')
    chunks.push(chunk as Buffer)
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

/** Serves the demo page for `options.servers` on loopback (by default) until closed. */
export async function startDemo(options: DemoOptions): Promise<Demo> {
  const files: Record<string, string> = {
    '/': readFileSync(join(HERE, 'index.html'), 'utf8'),
    '/demo.js': readFileSync(join(HERE, 'demo.js'), 'utf8'),
    '/tidings-browser.js': await bundleBrowserClient(),
    '/config.json': JSON.stringify({
      servers: options.servers,
      subscriptions: options.subscriptions ?? [],
      options: options.clientOptions ?? {},
      canPublish: (options.adminServers ?? []).length > 0,
      shellCommand: options.shellCommand,
    }),
  }
  const publisher =
    options.adminServers && options.adminServers.length > 0
      ? createPublisher({ servers: options.adminServers, instance: options.instance })
      : undefined

  async function publish(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json' })
      response.end(JSON.stringify(body))
    }
    try {
      const body = (await readJson(request)) as { subscribers?: unknown; text?: unknown }
      const result = await publisher!.publish({
        type: 'demo',
        subscribers: Array.isArray(body.subscribers) ? body.subscribers : [],
        text: String(body.text ?? ''),
      })
      reply(200, result)
    } catch (error) {
      const code = error instanceof PublishError ? error.code : 'bad_request'
      reply(error instanceof PublishError ? 502 : 400, {
        error: { code, message: (error as Error).message },
      })
    }
  }

  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname
    if (request.method === 'POST' && path === '/publish' && publisher) {
      void publish(request, response)
      return
    }
    if (path === '/favicon.ico') {
      response.writeHead(204)
      response.end()
      return
    }
    const body = files[path === '/index.html' ? '/' : path]
    if (request.method !== 'GET' || body === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain' })
      response.end('Not found\n')
      return
    }
    response.writeHead(200, {
      'content-type': TYPES[path === '/index.html' ? '/' : path] ?? 'text/plain',
      'cache-control': 'no-store',
    })
    response.end(body)
  })
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolveListen())
  })
  const { port } = server.address() as { port: number }
  const host = options.host ?? '127.0.0.1'
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    close: () =>
      new Promise((resolveClose) => {
        server.close(() => resolveClose())
        server.closeAllConnections()
      }),
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      client: { type: 'string', multiple: true },
      admin: { type: 'string', multiple: true },
      instance: { type: 'string' },
      subscriber: { type: 'string', default: 'PHID-USER-demo' },
    },
  })
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port must be a port number, got "${values.port}".`)
  }
  let node: RunningServer | undefined
  let clients = values.client ?? []
  let admins = values.admin ?? []
  if (clients.length === 0) {
    const config = parseConfig({
      servers: [
        { type: 'client', port: 0, listen: '127.0.0.1' },
        { type: 'admin', port: 0, listen: '127.0.0.1' },
      ],
    })
    const logger = {
      tracing: false,
      log: (message: string) => process.stdout.write(`[tidings] ${message}\n`),
      warn: (message: string) => process.stderr.write(`[tidings] ${message}\n`),
      trace() {},
    }
    node = await startServer({ config, logger })
    clients = [node.url('client')]
    admins = [node.url('admin')]
  }
  const instance = values.instance
  const path = instance ? `/~${instance}/` : '/'
  const admin = admins[0]
  const demo = await startDemo({
    servers: clients.map((url) => `${url.replace(/\/+$/, '')}${path}`),
    adminServers: admins,
    instance,
    subscriptions: [values.subscriber],
    host: values.host,
    port,
    shellCommand: admin
      ? `curl -X POST '${admin.replace(/\/+$/, '')}/${instance ? `?instance=${instance}` : ''}' \\\n  -d '{"type":"demo","subscribers":["${values.subscriber}"],"text":"hello from curl"}'`
      : undefined,
  })
  process.stdout.write(`\ntidings demo: open ${demo.url} in a browser (Ctrl-C to stop).\n`)
  const stop = (): void => {
    void Promise.all([demo.close(), node?.close(1000)]).then(() => process.exit(0))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`demo: ${(error as Error).message}\n`)
    process.exit(1)
  })
}
