/**
 * The Node PeerTransport: one undici keep-alive Pool per peer, at most `window` connections
 * each, connect/headers/body timeouts, receipts read whole (bounded) so every connection goes
 * back to its pool. https peers verify certificates against the system CAs plus `relay.ca`.
 */
import { readFileSync } from 'node:fs'
import { rootCertificates } from 'node:tls'
import { Pool } from 'undici'
import type { RelayOptions } from '../../src/config/schema.ts'
import type { PeerAddress, PeerReply, PeerTransport } from '../../src/ports.ts'
import { helloHeaders, relayRequestHead } from '../../src/relay/envelope.ts'
import { StartupError } from './listen.ts'

/** Receipts are `{"fingerprint":"…"}`; anything much larger is not one. */
const MAX_RECEIPT_BYTES = 64 * 1024

export type UndiciTransportOptions = Pick<
  RelayOptions,
  'timeout' | 'connectTimeout' | 'window' | 'ca'
> & {
  /** Milliseconds an idle keep-alive connection is kept (undici default 4 s). */
  keepAliveTimeout?: number
}

function readCa(path: string): string[] {
  try {
    return [...rootCertificates, readFileSync(path, 'utf8')]
  } catch (error) {
    throw new StartupError(
      `Unable to read "relay.ca" file "${path}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`
    )
  }
}

export class UndiciPeerTransport implements PeerTransport {
  readonly #pools = new Map<string, Pool>()
  readonly #ca: string[] | undefined
  #closed = false

  constructor(private readonly options: UndiciTransportOptions) {
    this.#ca = options.ca ? readCa(options.ca) : undefined
  }

  /** Open connections per peer origin, for status and tests. */
  connections(): Record<string, number> {
    const counts: Record<string, number> = {}
    for (const [origin, pool] of this.#pools) counts[origin] = pool.stats.connected
    return counts
  }

  async post(
    peer: PeerAddress,
    instance: string,
    body: Uint8Array,
    signal: AbortSignal,
    queuedMs?: number
  ): Promise<PeerReply> {
    const { path, headers } = relayRequestHead(peer, instance, queuedMs)
    const response = await this.#pool(peer.origin).request({
      method: 'POST',
      path,
      headers,
      body,
      signal,
    })
    // Always read the body to its end: a half-read response would pin the connection.
    const text = await response.body.text()
    return { status: response.statusCode, body: text }
  }

  async hello(peer: PeerAddress, fingerprint: string, signal: AbortSignal): Promise<void> {
    try {
      const response = await this.#pool(peer.origin).request({
        method: 'GET',
        path: '/status/',
        headers: helloHeaders(peer, fingerprint),
        signal,
      })
      await response.body.dump()
    } catch {
      // A peer that is not there yet hears from this node's first relay instead.
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.all(
      pools.map((pool) =>
        Promise.race([
          pool.close(),
          new Promise<void>((resolve) => setTimeout(resolve, 1000).unref()),
        ])
          .then(() => pool.destroy())
          .catch(() => {})
      )
    )
  }

  #pool(origin: string): Pool {
    if (this.#closed) throw new Error('peer transport is closed')
    let pool = this.#pools.get(origin)
    if (!pool) {
      const { timeout, connectTimeout, window } = this.options
      pool = new Pool(origin, {
        connections: window,
        pipelining: 1,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        keepAliveTimeout: this.options.keepAliveTimeout ?? 4000,
        maxResponseSize: MAX_RECEIPT_BYTES,
        connect: {
          timeout: connectTimeout,
          rejectUnauthorized: true,
          ...(this.#ca ? { ca: this.#ca } : {}),
        },
      })
      this.#pools.set(origin, pool)
    }
    return pool
  }
}
