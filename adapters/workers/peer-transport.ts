/**
 * The relay's PeerTransport on Workers: one `fetch` per relayed message. Workers keep
 * connections to a peer alive on their own; there is no pool to manage or close.
 */
import type { PeerAddress, PeerReply, PeerTransport } from '../../src/ports.ts'
import { SECRET_HEADER } from './auth.ts'

export class FetchPeerTransport implements PeerTransport {
  async post(
    peer: PeerAddress,
    instance: string,
    body: Uint8Array,
    signal: AbortSignal
  ): Promise<PeerReply> {
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (peer.secret !== undefined) headers[SECRET_HEADER] = peer.secret
    const response = await fetch(`${peer.origin}/?instance=${encodeURIComponent(instance)}`, {
      method: 'POST',
      headers,
      body,
      signal,
    })
    return { status: response.status, body: await response.text() }
  }
}
