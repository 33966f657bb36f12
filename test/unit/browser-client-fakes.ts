/** A scripted WebSocket for the browser client's unit tests: the test plays the server. */
import type { WebSocketConstructor, WebSocketLike } from '../../clients/browser.ts'

export class FakeSocket implements WebSocketLike {
  readyState = 0
  onopen: WebSocketLike['onopen'] = null
  onmessage: WebSocketLike['onmessage'] = null
  onclose: WebSocketLike['onclose'] = null
  onerror: WebSocketLike['onerror'] = null
  /** Frames the client sent, JSON-parsed. */
  readonly sent: Record<string, unknown>[] = []
  /** The code the client closed with, if it did. */
  closedWith: number | undefined

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open')
    this.sent.push(JSON.parse(data) as Record<string, unknown>)
  }

  close(code?: number): void {
    this.closedWith = code
    this.readyState = 3
  }

  // The server's side.
  open(): void {
    this.readyState = 1
    this.onopen?.(new Event('open'))
  }

  deliver(frame: unknown): void {
    const data = typeof frame === 'string' ? frame : JSON.stringify(frame)
    this.onmessage?.({ data } as MessageEvent)
  }

  drop(code = 1006, reason = ''): void {
    this.readyState = 3
    this.onclose?.({ code, reason } as CloseEvent)
  }

  commands(name: string): Record<string, unknown>[] {
    return this.sent.filter((frame) => frame.command === name)
  }
}

/** A WebSocket constructor that records every socket it makes. */
export function fakeNetwork(): { WebSocket: WebSocketConstructor; sockets: FakeSocket[] } {
  const sockets: FakeSocket[] = []
  class Socket extends FakeSocket {
    constructor(url: string) {
      super(url)
      sockets.push(this)
    }
  }
  return { WebSocket: Socket, sockets }
}

/** A small deterministic PRNG (mulberry32), so "random" tests are repeatable. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
