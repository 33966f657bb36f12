/**
 * The relay's PeerTransport on Workers: one `fetch` per relayed message. Workers keep
 * connections to a peer alive on their own; there is no pool to manage or close.
 */
import type { PeerTransport } from '../../src/ports.ts'
import { relayRequestHead } from '../../src/relay/envelope.ts'

export const fetchPeerTransport: PeerTransport = {
  async post(peer, instance, body, signal, queuedMs) {
    const { path, headers } = relayRequestHead(peer, instance, queuedMs)
    const response = await fetch(`${peer.origin}${path}`, { method: 'POST', headers, body, signal })
    return { status: response.status, body: await response.text() }
  },
}
