/**
 * An original Aphlict node's cluster rules (aphlict-behaviour.md §7, §9.1), minus its bugs in
 * the wire encoding: parse, drop if our fingerprint is in `touched`, stamp, deliver, relay
 * the stamped message to every peer whose learned fingerprint is not in `touched`, learn
 * fingerprints from receipts. No deduplication, no queue, no retry: fire and forget.
 */

export interface AphlictPeerEntry {
  origin: string
  fingerprint: string | null
}

/** Sends one relay; resolves with the response body text, or undefined on failure. */
export type AphlictSend = (
  origin: string,
  instance: string,
  text: string
) => Promise<string | undefined>

export class AphlictRules {
  messagesIn = 0
  /** Every message delivered locally, as the JSON a client would get, per instance. */
  readonly delivered: { instance: string; text: string }[] = []
  readonly peers: AphlictPeerEntry[]

  constructor(
    readonly fingerprint: string,
    peerOrigins: readonly string[],
    private readonly send: AphlictSend
  ) {
    this.peers = peerOrigins.map((origin) => ({ origin, fingerprint: null }))
  }

  /** Handles `POST /?instance=`: returns [status, body]. */
  receive(instance: string, text: string): [number, string] {
    let message: Record<string, unknown>
    try {
      message = JSON.parse(text) as Record<string, unknown>
    } catch {
      return [400, '']
    }
    this.messagesIn++
    if (message === null || typeof message !== 'object') return [500, '']
    const touched = (message.touched as string[] | undefined) ?? []
    if (!touched.includes(this.fingerprint)) {
      touched.push(this.fingerprint)
      message.touched = touched
      this.delivered.push({ instance, text: JSON.stringify(message) })
      this.#broadcast(instance, message)
    }
    return [200, JSON.stringify({ fingerprint: this.fingerprint })]
  }

  #broadcast(instance: string, message: Record<string, unknown>): void {
    const touched = new Set(message.touched as string[])
    const data = JSON.stringify(message)
    for (const peer of this.peers) {
      if (peer.fingerprint && touched.has(peer.fingerprint)) continue
      void this.send(peer.origin, instance, data).then((body) => {
        if (body === undefined) return
        try {
          const receipt = JSON.parse(body) as { fingerprint?: string }
          if (receipt.fingerprint) peer.fingerprint = receipt.fingerprint
        } catch {
          // Aphlict ignores receipts that are not JSON.
        }
      })
    }
  }
}

/** What the fake Aphlict server saw of one request. */
export interface SeenRequest {
  method: string
  url: string
  contentType: string | undefined
  contentLength: number
  bodyBytes: number
  /** Sent by the test itself (marked with an `x-test-publisher` header), not relayed. */
  fromTest: boolean
}

export interface AphlictServer {
  readonly url: string
  readonly port: number
  readonly rules: AphlictRules
  readonly requests: SeenRequest[]
  close(): Promise<void>
}
