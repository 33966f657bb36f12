/**
 * The benchmark's baseline: a minimal bare-`ws` notification server written the obvious
 * good way — a subscriber index (id → sockets), the message serialised once into one
 * Buffer, `ws.send(buffer, {binary: false})` per socket, sockets over 4 MiB buffered are
 * skipped. With `--cork` each socket is also corked on its first write in an event-loop
 * turn and uncorked on setImmediate (stack-notes §3). Not part of tidings.
 *
 *   node --import tsx bench/baseline-server.ts [--cork] [--slow-bytes N]
 * Prints `listening <clientPort> <adminPort>` once both ports are bound (127.0.0.1 only).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import WebSocket, { type RawData, WebSocketServer } from 'ws'

const { values } = parseArgs({
  options: { cork: { type: 'boolean', default: false }, 'slow-bytes': { type: 'string' } },
})
const cork = values.cork === true
const slowBytes = Number(values['slow-bytes'] ?? 4 * 1024 * 1024)

type Sock = WebSocket & { subs: string[]; corked: boolean }
const index = new Map<string, Set<Sock>>()

const corked: Sock[] = []
let flushScheduled = false
function flush(): void {
  flushScheduled = false
  for (const ws of corked) {
    ws.corked = false
    ;(ws as unknown as { _socket: { uncork(): void } })._socket.uncork()
  }
  corked.length = 0
}

function sendTo(ws: Sock, buffer: Buffer): void {
  if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > slowBytes) return
  if (cork && !ws.corked) {
    ws.corked = true
    ;(ws as unknown as { _socket: { cork(): void } })._socket.cork()
    corked.push(ws)
    if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flush)
    }
  }
  ws.send(buffer, { binary: false })
}

const PONG = Buffer.from('{"type":"pong"}')

function onMessage(this: WebSocket, data: RawData): void {
  const ws = this as Sock
  let frame: { command?: string; data?: unknown }
  try {
    frame = JSON.parse(String(data))
  } catch {
    return
  }
  if (frame.command === 'ping') sendTo(ws, PONG)
  else if (frame.command === 'subscribe' && Array.isArray(frame.data)) {
    for (const id of frame.data as string[]) {
      let set = index.get(id)
      if (!set) {
        set = new Set()
        index.set(id, set)
      }
      set.add(ws)
      ws.subs.push(id)
    }
  }
}

function onClose(this: WebSocket): void {
  const ws = this as Sock
  for (const id of ws.subs) {
    const set = index.get(id)
    if (set?.delete(ws) && set.size === 0) index.delete(id)
  }
}

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: 64 * 1024,
})
const clientServer = createServer((_req, res) => res.writeHead(501).end())
clientServer.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (client) => {
    const ws = client as Sock
    ws.subs = []
    ws.corked = false
    ws.on('message', onMessage)
    ws.on('close', onClose)
    ws.on('error', () => {})
  })
})

const RECEIPT = '{"fingerprint":"baseline"}'

function publish(body: string): void {
  const message = JSON.parse(body) as Record<string, unknown>
  const subscribers = message.subscribers as string[]
  message.touched = ['baseline']
  const buffer = Buffer.from(JSON.stringify(message))
  if (subscribers.length === 1) {
    const set = index.get(subscribers[0] as string)
    if (set) for (const ws of set) sendTo(ws, buffer)
    return
  }
  const seen = new Set<Sock>()
  for (const id of subscribers) {
    const set = index.get(id)
    if (!set) continue
    for (const ws of set) {
      if (seen.has(ws)) continue
      seen.add(ws)
      sendTo(ws, buffer)
    }
  }
}

const adminServer = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    try {
      publish(Buffer.concat(chunks).toString('utf8'))
      res.writeHead(200, { 'content-type': 'application/json' }).end(RECEIPT)
    } catch {
      res.writeHead(400).end()
    }
  })
})

const listen = (server: ReturnType<typeof createServer>): Promise<number> =>
  new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  )
const clientPort = await listen(clientServer)
const adminPort = await listen(adminServer)
process.stdout.write(`listening ${clientPort} ${adminPort}\n`)
process.on('SIGTERM', () => process.exit(0))
