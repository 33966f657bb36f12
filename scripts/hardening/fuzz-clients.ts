/**
 * The fuzzer's clients: a WebSocket client that counts pongs and knows why it was closed,
 * and raw TCP senders for malformed HTTP requests and malformed WebSocket frames.
 */
import { randomBytes } from 'node:crypto'
import { connect as netConnect } from 'node:net'
import WebSocket from 'ws'
import type { Random } from './random.ts'

export const PING = Buffer.from('{"command":"ping","data":null}')
const PONG = '{"type":"pong"}'

export class FuzzClient {
  pongs = 0
  messages = 0
  closeCode: number | undefined
  readonly closed: Promise<number>
  #wake: (() => void) | undefined

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages++
      if (data.toString() === PONG) this.pongs++
      this.#wake?.()
    })
    ws.on('error', () => {})
    this.closed = new Promise((resolve) =>
      ws.on('close', (code) => {
        this.closeCode = code
        this.#wake?.()
        resolve(code)
      })
    )
  }

  static open(url: string, timeoutMs = 10_000): Promise<FuzzClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false })
      const client = new FuzzClient(ws)
      const timer = setTimeout(() => {
        ws.terminate()
        reject(new Error(`connect to ${url} timed out`))
      }, timeoutMs)
      ws.once('open', () => {
        clearTimeout(timer)
        resolve(client)
      })
      ws.once('unexpected-response', (_request, response) => {
        clearTimeout(timer)
        reject(new Error(`upgrade to ${url} refused with ${response.statusCode}`))
      })
      ws.once('error', (error) => {
        clearTimeout(timer)
        reject(error)
      })
    })
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN
  }

  send(data: Buffer, binary: boolean): void {
    this.ws.send(data, { binary })
  }

  /** Resolves true once `pongs` reaches `count`, false if the socket closes first; rejects on timeout. */
  async waitPongs(count: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (this.pongs < count) {
      if (this.closeCode !== undefined) return false
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`only ${this.pongs} of ${count} pongs within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250))
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.#wake = undefined
    }
    return true
  }

  close(): Promise<number> {
    if (this.closeCode === undefined) this.ws.close()
    return this.closed
  }
}

/**
 * Writes `request` on a fresh TCP connection, reads until the server closes (or `timeoutMs`).
 * With `end` false the client never half-closes: only the server can end the exchange.
 */
export function rawExchange(
  port: number,
  request: Buffer,
  timeoutMs: number,
  end = true
): Promise<{ response: string; timedOut: boolean; error?: string }> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    let settled = false
    const finish = (timedOut: boolean, error?: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({
        response: Buffer.concat(chunks).toString('latin1'),
        timedOut,
        ...(error ? { error } : {}),
      })
    }
    const timer = setTimeout(() => finish(true), timeoutMs)
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('end', () => finish(false))
    socket.on('close', () => finish(false))
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // The server may reset a connection it refused while we were still writing.
      finish(false, error.code ?? error.message)
    })
    socket.on('connect', () => (end ? socket.end(request) : socket.write(request)))
  })
}

/** An HTTP/1.1 POST to the admin port with a few headers or bytes of its head mutated. */
export function mutatedHttpRequest(random: Random, instance: string, body: Buffer): Buffer {
  const headers: [string, string][] = [
    ['Host', '127.0.0.1'],
    ['Content-Type', 'application/json'],
    ['Content-Length', String(body.length)],
    ['Connection', 'close'],
  ]
  const edits = 1 + random.int(3)
  let chunked = false
  for (let e = 0; e < edits; e++) {
    switch (random.int(9)) {
      case 0:
        headers.splice(random.int(headers.length), 1)
        break
      case 1:
        headers.push(['Content-Length', String(Math.max(0, body.length + random.int(21) - 10))])
        break
      case 2:
        headers.push([
          'Transfer-Encoding',
          random.pick(['chunked', 'gzip, chunked', 'identity', 'x']),
        ])
        chunked = random.chance(0.5)
        break
      case 3:
        headers.push([
          random.pick(['X-A', 'x-forwarded-for', 'Expect', 'Upgrade']),
          random.pick(['100-continue', 'websocket', '1.2.3.4', '\u00ff\u00fe']),
        ])
        break
      case 4:
        headers.push(['X-Big', 'a'.repeat(random.pick([100, 9000, 20_000]))])
        break
      case 5:
        headers.push([`X-${random.bytes(4).toString('hex')}`, random.bytes(8).toString('latin1')])
        break
      case 6:
        headers.push([' X-Leading-Space', 'v'])
        break
      case 7:
        headers.push([
          'Content-Length',
          random.pick(['-1', '1e3', '0x10', ' 5', '99999999999999999999']),
        ])
        break
      default: {
        const at = random.int(headers.length)
        const [name, value] = headers[at] as [string, string]
        headers[at] = [
          name.toUpperCase(),
          `${value}${random.pick(['\t', ' ', '\r', '\n', '\u0000'])}`,
        ]
      }
    }
  }
  const head = `POST /?instance=${instance} HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}`).join('\r\n')}\r\n\r\n`
  const payload = chunked
    ? Buffer.concat([
        Buffer.from(`${body.length.toString(16)}\r\n`),
        body,
        Buffer.from('\r\n0\r\n\r\n'),
      ])
    : body
  return Buffer.concat([Buffer.from(head, 'latin1'), payload])
}

/** A client frame (masked, as RFC 6455 requires of clients), with its header possibly mangled. */
export function mangledWsFrame(random: Random, payload: Buffer): Buffer {
  const mask = randomBytes(4)
  let opcode = random.chance(0.7) ? 0x1 : random.int(16)
  let fin = 0x80
  let rsv = 0
  let masked = 0x80
  let length = payload.length
  switch (random.int(6)) {
    case 0:
      rsv = random.pick([0x40, 0x20, 0x10])
      break
    case 1:
      masked = 0
      break
    case 2:
      fin = 0
      break
    case 3:
      length = random.pick([0, payload.length + 5, 126, 65_535])
      break
    case 4:
      opcode = random.pick([0x8, 0x9, 0xa, 0x0])
      break
    default:
      break
  }
  const header =
    length < 126
      ? Buffer.from([fin | rsv | opcode, masked | length])
      : Buffer.from([fin | rsv | opcode, masked | 126, (length >> 8) & 0xff, length & 0xff])
  const body = Buffer.from(payload)
  if (masked)
    for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (mask[i % 4] as number)
  return Buffer.concat(masked ? [header, mask, body] : [header, body])
}

/**
 * An upgrade request aimed at the upgrade path itself: hostile targets (ones that broke URL
 * parsing, absolute forms, random bytes), random header lines, and often cut short before
 * the blank line, so only the handshake deadline ends it.
 */
export function hostileUpgrade(
  random: Random,
  targets: readonly string[]
): { request: Buffer; complete: boolean } {
  const target = random.chance(0.5)
    ? random.pick(targets)
    : random.chance(0.5)
      ? `/${random.text(1 + random.int(60))}`
      : random.text(1 + random.int(20))
  const lines = [
    `${random.pick(['GET', 'GET', 'POST', 'G\u00e9T'])} ${target} ${random.pick(['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2'])}`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
  ]
  for (let i = random.int(4); i > 0; i--) {
    lines.splice(
      1 + random.int(lines.length - 1),
      0,
      `${random.text(1 + random.int(12))}: ${random.text(random.int(40))}`
    )
  }
  if (random.chance(0.2)) lines.push(`X-Forwarded-For: ${random.text(random.int(30))}`)
  if (random.chance(0.2)) lines.push(`Origin: ${random.text(random.int(30))}`)
  const complete = !random.chance(0.25)
  return {
    request: Buffer.from(`${lines.join('\r\n')}\r\n${complete ? '\r\n' : ''}`, 'latin1'),
    complete,
  }
}

/** A WebSocket handshake request, sometimes mangled (bad key, version, path or headers). */
export function handshake(random: Random, path: string): Buffer {
  const lines = [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
  ]
  if (random.chance(0.3)) {
    const at = 1 + random.int(lines.length - 1)
    lines[at] = random.pick([
      'Sec-WebSocket-Version: 8',
      'Sec-WebSocket-Key: short',
      'Upgrade: h2c',
      'Origin: https://evil.example',
      'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits',
      'X: \u00ff',
    ])
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
}
