/** A queue-style WebSocket test client: `next()` resolves with the next frame, in order. */
import WebSocket from 'ws'
import { HANDSHAKE_MS, OWED_MS, SILENCE_MS } from './patience.ts'

export interface CloseEvent {
  code: number
  reason: string
}

export interface TestClient {
  readonly ws: WebSocket
  send(frame: unknown): void
  sendRaw(text: string | Buffer): void
  /** The next frame, JSON-parsed; rejects after `timeoutMs`. */
  next(timeoutMs?: number): Promise<Record<string, unknown>>
  /** Resolves if nothing arrives for `ms`; rejects with the frame otherwise. */
  silence(ms?: number): Promise<void>
  /** Sends ping and waits for pong (skipping nothing: the pong must be next). */
  ping(timeoutMs?: number): Promise<void>
  readonly closed: Promise<CloseEvent>
  close(): Promise<CloseEvent>
}

export async function connect(
  url: string,
  timeoutMs = HANDSHAKE_MS,
  headers?: Record<string, string>
): Promise<TestClient> {
  const ws = new WebSocket(url, headers ? { headers } : {})
  const frames: Record<string, unknown>[] = []
  const waiters: ((frame: Record<string, unknown>) => void)[] = []
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as Record<string, unknown>
    const waiter = waiters.shift()
    if (waiter) waiter(frame)
    else frames.push(frame)
  })
  const closed = new Promise<CloseEvent>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connect to ${url} timed out`)), timeoutMs)
    ws.once('open', () => {
      clearTimeout(timer)
      resolve()
    })
    ws.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
  ws.on('error', () => {})

  const next = (waitMs = OWED_MS): Promise<Record<string, unknown>> => {
    const queued = frames.shift()
    if (queued) return Promise.resolve(queued)
    return new Promise((resolve, reject) => {
      const waiter = (frame: Record<string, unknown>): void => {
        clearTimeout(timer)
        resolve(frame)
      }
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1)
        reject(new Error(`no frame within ${waitMs} ms`))
      }, waitMs)
      waiters.push(waiter)
    })
  }

  return {
    ws,
    send: (frame) => ws.send(JSON.stringify(frame)),
    sendRaw: (text) => ws.send(text),
    next,
    async silence(ms = SILENCE_MS) {
      try {
        const frame = await next(ms)
        throw new Error(`expected silence, got ${JSON.stringify(frame)}`)
      } catch (error) {
        if ((error as Error).message.startsWith('expected silence')) throw error
      }
    },
    async ping(waitMs = OWED_MS) {
      ws.send(JSON.stringify({ command: 'ping', data: null }))
      const frame = await next(waitMs)
      if (frame.type !== 'pong') throw new Error(`expected pong, got ${JSON.stringify(frame)}`)
    },
    closed,
    async close() {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close()
      return closed
    },
  }
}

/** Resolves once `predicate` holds, polling; rejects after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T> | T,
  predicate: (value: T) => boolean,
  timeoutMs = OWED_MS
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (predicate(value)) return value
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms; last: ${JSON.stringify(value)}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A client on `url`, subscribed to `ids` (the server has taken them when this resolves). */
export async function subscribedClient(url: string, ids: string[]): Promise<TestClient> {
  const client = await connect(url)
  client.send({ command: 'subscribe', data: ids })
  await client.ping()
  return client
}
