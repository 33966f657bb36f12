/**
 * One shard of the benchmark's client fleet, run as a child process of bench/run.ts and
 * driven over IPC. Clients are raw TCP sockets that do the WebSocket handshake by hand and
 * parse frames with a few byte reads, so receiving costs as little as it can: no `ws`
 * Receiver, no JSON.parse. Each client subscribes to one shared id and its own id, then
 * records `now - bt` for every message (`bt` is the publisher's µs timestamp in the body).
 * Loopback only; the process exits when its parent goes away or after --max-ms.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { Histogram } from './histogram.ts'
import type { FleetCommand, FleetReport } from './protocol.ts'
import { serveRpc } from './rpc.ts'

const shard = Number(process.env.BENCH_SHARD ?? 0)
const maxMs = Number(process.env.BENCH_MAX_MS ?? 600_000)
setTimeout(() => process.exit(3), maxMs).unref()
process.on('disconnect', () => process.exit(0))

const MARKER = Buffer.from('"bt":')
const PONG_PREFIX = Buffer.from('{"type":"pong"')
const HANDSHAKE_END = Buffer.from('\r\n\r\n')
const CONNECT_TIMEOUT_MS = 15_000

const clock = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000)

class Client {
  rest: Buffer | undefined = undefined
  /** Takes the bytes until the upgrade response is complete; undefined afterwards. */
  handshake: ((chunk: Buffer) => void) | undefined = undefined
  open = false
  paused = false
  closeCode = 0
  onPong: (() => void) | undefined = undefined
  constructor(
    readonly index: number,
    readonly socket: Socket
  ) {}
}

type ClientSocket = Socket & { client: Client }

const clients: Client[] = []
const latency = new Histogram()
const stats = {
  received: 0,
  firstAt: 0,
  lastAt: 0,
  slowReceived: 0,
  ended: 0,
  closes: {} as Record<string, number>,
}

/** A masked client frame with an all-zero mask key (payload left as is), as RFC 6455 allows. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  if (payload.length > 125) throw new Error('client frames here are small')
  const frame = Buffer.alloc(6 + payload.length)
  frame[0] = 0x80 | opcode
  frame[1] = 0x80 | payload.length
  payload.copy(frame, 6)
  return frame
}

function onText(client: Client, buf: Buffer, start: number, end: number, now: number): void {
  if (
    end - start >= PONG_PREFIX.length &&
    buf.compare(PONG_PREFIX, 0, PONG_PREFIX.length, start, start + PONG_PREFIX.length) === 0
  ) {
    const done = client.onPong
    client.onPong = undefined
    done?.()
    return
  }
  const at = buf.indexOf(MARKER, start)
  if (at < 0 || at >= end) return
  let value = 0
  for (let i = at + MARKER.length; i < end; i++) {
    const digit = (buf[i] as number) - 48
    if (digit < 0 || digit > 9) break
    value = value * 10 + digit
  }
  if (client.paused) {
    stats.slowReceived++
    return
  }
  stats.received++
  if (stats.firstAt === 0) stats.firstAt = now
  stats.lastAt = now
  latency.record(now - value)
}

function parseFrames(client: Client, chunk: Buffer): void {
  let buf = chunk
  if (client.rest !== undefined) {
    buf = Buffer.concat([client.rest, chunk])
    client.rest = undefined
  }
  const now = clock()
  const n = buf.length
  let off = 0
  while (off + 2 <= n) {
    const b0 = buf[off] as number
    const b1 = buf[off + 1] as number
    let len = b1 & 0x7f
    let header = 2
    if (len === 126) {
      if (off + 4 > n) break
      len = buf.readUInt16BE(off + 2)
      header = 4
    } else if (len === 127) {
      if (off + 10 > n) break
      len = buf.readUInt32BE(off + 6)
      header = 10
    }
    const start = off + header
    const end = start + len
    if (end > n) break
    const opcode = b0 & 0x0f
    if (opcode === 1) onText(client, buf, start, end, now)
    else if (opcode === 9) client.socket.write(clientFrame(0xa, buf.subarray(start, end)))
    else if (opcode === 8) {
      const code = len >= 2 ? buf.readUInt16BE(start) : 1005
      client.closeCode = code
      stats.closes[code] = (stats.closes[code] ?? 0) + 1
      client.open = false
      client.socket.destroy()
      return
    }
    off = end
  }
  if (off < n) client.rest = Buffer.from(buf.subarray(off))
}

/**
 * Every socket reads into this one buffer (net's `onread`): no Buffer and no stream event
 * per read. Its contents are only valid during the callback; whatever must outlive it is
 * copied (a partial frame, the handshake).
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024)

function onRead(this: ClientSocket, nread: number, buffer: Buffer): void {
  const { client } = this
  const chunk = buffer.subarray(0, nread)
  if (client.handshake !== undefined) client.handshake(chunk)
  else parseFrames(client, chunk)
}

function onEnd(this: ClientSocket): void {
  const { client } = this
  if (client.open) {
    client.open = false
    stats.ended++
  }
}

function connectOne(url: URL, index: number, subscribe: string[]): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({
      host: '127.0.0.1',
      port: Number(url.port),
      onread: { buffer: READ_BUFFER, callback: onRead as (n: number, b: Buffer) => boolean },
    }) as ClientSocket
    const client = new Client(index, socket)
    socket.client = client
    let head: Buffer = Buffer.alloc(0)
    const timer = setTimeout(() => fail(new Error('handshake timed out')), CONNECT_TIMEOUT_MS)
    const fail = (error: Error): void => {
      clearTimeout(timer)
      socket.destroy()
      reject(error)
    }
    socket.setNoDelay(true)
    socket.on('error', (error) => {
      if (!client.open) fail(error)
    })
    socket.on('connect', () => {
      socket.write(
        `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`
      )
    })
    client.handshake = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk])
      const at = head.indexOf(HANDSHAKE_END)
      if (at < 0) return
      if (!head.subarray(0, 13).toString('latin1').startsWith('HTTP/1.1 101')) {
        fail(
          new Error(`upgrade refused: ${head.subarray(0, at).toString('latin1').split('\r\n')[0]}`)
        )
        return
      }
      client.handshake = undefined
      socket.on('end', onEnd)
      socket.on('close', onEnd)
      client.open = true
      client.onPong = () => {
        clearTimeout(timer)
        resolve(client)
      }
      const payload = Buffer.from(JSON.stringify({ command: 'subscribe', data: subscribe }))
      socket.write(
        Buffer.concat([
          clientFrame(1, payload),
          clientFrame(1, Buffer.from('{"command":"ping","data":null}')),
        ])
      )
      if (at + 4 < head.length) parseFrames(client, head.subarray(at + 4))
    }
  })
}

async function connectMany(
  url: string,
  count: number,
  concurrency: number,
  shared: string
): Promise<{ connected: number; failed: number; error?: string }> {
  const target = new URL(url)
  const from = clients.length
  let next = from
  let failed = 0
  let error: string | undefined
  const worker = async (): Promise<void> => {
    while (next < from + count) {
      const index = next++
      try {
        clients[index] = await connectOne(target, index, [shared, `PHID-BENCH-${shard}-${index}`])
      } catch (caught) {
        failed++
        error = (caught as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  // Failed slots leave holes; keep the array dense so indexes stay ids.
  const connected = clients.slice(from).filter(Boolean).length
  return error === undefined ? { connected, failed } : { connected, failed, error }
}

function report(): FleetReport {
  return {
    shard,
    ...stats,
    histogram: latency.toSparse(),
    max: latency.max,
    open: clients.filter((client) => client?.open).length,
    cpu: process.cpuUsage(),
  }
}

function reset(): void {
  latency.reset()
  stats.received = 0
  stats.firstAt = 0
  stats.lastAt = 0
  stats.slowReceived = 0
  stats.ended = 0
  stats.closes = {}
}

async function handle(command: FleetCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'connect':
      return connectMany(command.url, command.count, command.concurrency, command.shared)
    case 'keep': {
      for (const client of clients.splice(command.count)) client?.socket.destroy()
      return { open: clients.length }
    }
    case 'pause': {
      let paused = 0
      // The most recent clients: fresh sockets whose kernel buffers have not grown yet.
      for (const client of [...clients].reverse()) {
        if (paused >= command.count) break
        if (!client?.open) continue
        client.paused = true
        client.socket.pause()
        paused++
      }
      return { paused }
    }
    case 'resume': {
      for (const client of clients) {
        if (client?.paused) client.socket.resume()
      }
      return { ok: true }
    }
    case 'reset':
      reset()
      return { ok: true }
    case 'report':
      return report()
    case 'count':
      return { received: stats.received }
  }
}

serveRpc(handle)
