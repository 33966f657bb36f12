/**
 * The hibernation path without workerd: sockets carry their instance and subscriptions in
 * attachments, and a fresh hub (as after a wake) is rebuilt from them alone.
 */
import { describe, expect, it } from 'vitest'
import {
  ATTACHMENT_BYTES,
  attachmentBytes,
  CLOSE_STATE_LOST,
  decodeAttachment,
  encodeAttachment,
} from '../../adapters/workers/attachment.ts'
import { type HibernatableSocket, SocketRegistry } from '../../adapters/workers/registry.ts'
import { outboundFromValue } from '../../src/hub/outbound.ts'
import type { TidingsNode } from '../../src/node/node.ts'
import { RecordingLogger, testNode } from '../helpers/fakes.ts'

class FakeWorkerSocket implements HibernatableSocket {
  attachment: unknown
  readonly sent: string[] = []
  closed: { code?: number; reason?: string } | undefined
  send(message: string): void {
    this.sent.push(message)
  }
  close(code?: number, reason?: string): void {
    this.closed = { code, reason }
  }
  serializeAttachment(value: unknown): void {
    // workerd refuses 16 KiB and more (structured clone of a one-byte string ≈ its length).
    if (typeof value === 'string' && attachmentBytes(value) >= 16_384) {
      throw new Error('attachment too large')
    }
    this.attachment = structuredClone(value)
  }
  deserializeAttachment(): unknown {
    return structuredClone(this.attachment)
  }
}

/** A node as a Durable Object holds one (a fresh one stands for a woken object). */
function newNode(): TidingsNode {
  return testNode({ history: { size: 10 } }).node
}

/** One subscribe/unsubscribe frame from the socket, as the Durable Object hands it on. */
function frame(
  registry: SocketRegistry,
  node: TidingsNode,
  ws: FakeWorkerSocket,
  op: 'subscribe' | 'unsubscribe',
  ids: string[]
): void {
  const connection = registry.connectionOf(ws)
  if (!connection) throw new Error('no connection')
  node.frame(connection, JSON.stringify({ command: op, data: ids }))
}

const deliver = (node: TidingsNode, instance: string, ids: string[], n: number): void => {
  node.tidings.hub.publish(instance, ids, outboundFromValue({ n }))
}

describe('workers adapter: socket registry', () => {
  it('rebuilds connections and the subscription index from attachments after a wake', () => {
    const hub = newNode()
    const registry = new SocketRegistry(hub, new RecordingLogger())
    const a = new FakeWorkerSocket()
    const b = new FakeWorkerSocket()
    registry.accept(a, 'alpha')
    registry.accept(b, 'beta')
    frame(registry, hub, a, 'subscribe', ['P1', 'P2', 'P3'])
    frame(registry, hub, a, 'unsubscribe', ['P2'])
    frame(registry, hub, b, 'subscribe', ['P2'])

    // The object is evicted: a new hub and registry, nothing but the sockets.
    const woken = newNode()
    const again = new SocketRegistry(woken, new RecordingLogger())
    expect(again.restore([a, b])).toBe(2)
    expect(again.restored).toBe(2)
    expect(woken.tidings.hub.find('alpha')?.active).toBe(1)
    deliver(woken, 'alpha', ['P2'], 1)
    deliver(woken, 'alpha', ['P3'], 2)
    deliver(woken, 'beta', ['P2'], 3)
    expect(a.sent.map((text) => JSON.parse(text).n)).toEqual([2])
    expect(b.sent.map((text) => JSON.parse(text).n)).toEqual([3])
    // Restoring twice (constructor, then a late event) never doubles a socket.
    expect(again.restore([a, b])).toBe(0)
    expect(woken.tidings.hub.find('alpha')?.active).toBe(1)
  })

  it('restores a socket first seen in an event after the wake', () => {
    const hub = newNode()
    const registry = new SocketRegistry(hub, new RecordingLogger())
    const ws = new FakeWorkerSocket()
    registry.accept(ws, 'alpha')
    frame(registry, hub, ws, 'subscribe', ['P1'])
    const woken = newNode()
    const again = new SocketRegistry(woken, new RecordingLogger())
    expect(again.connectionOf(ws)?.subs).toEqual(new Set(['P1']))
    expect(again.restored).toBe(1)
  })

  it('closes a socket whose attachment cannot be read, so it reconnects', () => {
    const registry = new SocketRegistry(newNode(), new RecordingLogger())
    const ws = new FakeWorkerSocket()
    ws.attachment = { something: 'else' }
    expect(registry.restore([ws])).toBe(0)
    expect(ws.closed?.code).toBe(CLOSE_STATE_LOST)
  })

  it('closes with 1008 a socket whose subscriptions would not fit in an attachment', () => {
    const hub = newNode()
    const registry = new SocketRegistry(hub, new RecordingLogger())
    const ws = new FakeWorkerSocket()
    registry.accept(ws, 'alpha')
    // 30-character PHIDs, like Phorge's: about 480 fit in 16,000 bytes.
    const phids = Array.from({ length: 600 }, (_, i) => `PHID-USER-${String(i).padStart(20, '0')}`)
    frame(registry, hub, ws, 'subscribe', phids.slice(0, 400))
    expect(ws.closed).toBeUndefined()
    expect(decodeAttachment(ws.attachment)?.subs).toHaveLength(400)
    frame(registry, hub, ws, 'subscribe', phids.slice(400))
    expect(ws.closed).toEqual({ code: 1008, reason: 'subscription_bytes' })
    expect(hub.tidings.hub.find('alpha')?.active).toBe(0)
    // What was stored is still the last state that fitted.
    expect(decodeAttachment(ws.attachment)?.subs).toHaveLength(400)
  })

  it('counts two bytes per character once any character is outside Latin-1', () => {
    const latin = encodeAttachment('i', ['é'.repeat(100)])
    const wide = encodeAttachment('i', ['世'.repeat(100)])
    expect(attachmentBytes(latin)).toBe(latin.length + 16)
    expect(attachmentBytes(wide)).toBe(2 * wide.length + 16)
    expect(ATTACHMENT_BYTES).toBeLessThan(16_384)
  })
})
