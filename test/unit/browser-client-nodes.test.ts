/**
 * The browser client on Node (the `ws` package as its WebSocket) against real in-process
 * tidings nodes: a graceful shutdown (1001) sends it to the other node, which replays what
 * was posted while it was away, once. Reconnect timers are fired by hand, so "while away"
 * is certain; the network is real.
 */
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { RunningServer } from '../../adapters/node/server.ts'
import {
  type ClientStatus,
  createClient,
  type Timers,
  type WebSocketConstructor,
} from '../../clients/browser.ts'
import type { TidingsMessage } from '../../clients/message.ts'
import { createPublisher } from '../../clients/publisher.ts'
import { startNode } from '../helpers/node-target.ts'
import { eventually } from '../helpers/ws-client.ts'

/** Timers that only fire when the test says so. */
function manualTimers(): Timers & { pending(): number; fire(): void } {
  let next = 1
  const callbacks = new Map<number, () => void>()
  return {
    setTimeout(callback) {
      const id = next++
      callbacks.set(id, callback)
      return id
    },
    clearTimeout(handle) {
      callbacks.delete(handle as number)
    },
    pending: () => callbacks.size,
    fire() {
      const due = [...callbacks.values()]
      callbacks.clear()
      for (const callback of due) callback()
    },
  }
}

const nodes: RunningServer[] = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((node) => node.close(1000)))
})

describe('browser client against real nodes', () => {
  it('moves to the other node on 1001 and replays what it missed, exactly once', async () => {
    const [a, b] = await Promise.all([startNode(), startNode()])
    nodes.push(a, b)
    const path = '/~client-nodes/'
    const timers = manualTimers()
    const statuses: ClientStatus[] = []
    const messages: TidingsMessage[] = []
    const client = createClient({
      servers: [`${a.url('client')}${path}`, `${b.url('client')}${path}`],
      subscriptions: ['PHID-N'],
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      timers,
      random: () => 0, // first pick: A; delays: 0
      pingIntervalMs: 0,
    })
    client.on('status', (status) => statuses.push(status))
    client.on('message', (message) => messages.push(message))
    const texts = (): unknown[] => messages.map((message) => message.text)
    const publish = (node: RunningServer, text: string, uniqueID?: string) =>
      createPublisher({ servers: [node.url('admin')], instance: 'client-nodes' }).publish({
        subscribers: ['PHID-N'],
        text,
        ...(uniqueID ? { uniqueID } : {}),
      })

    try {
      await eventually(
        () => client.status,
        (status) => status.state === 'open'
      )
      expect(client.status.url).toBe(`${a.url('client')}${path}`)
      await eventually(
        () => a.tidings.hub.find('client-nodes')?.index.has('PHID-N'),
        (subscribed) => subscribed === true
      )
      await publish(a, 'm0', 'u-m0')
      await publish(b, 'm0', 'u-m0') // B's history holds it too, as after a cluster relay
      await eventually(texts, (t) => t.length === 1)

      await a.close(1000)
      await eventually(
        () => client.status,
        (status) => status.state === 'reconnecting'
      )
      expect(client.status).toMatchObject({
        code: 1001,
        url: `${a.url('client')}${path}`,
        next: `${b.url('client')}${path}`,
      })
      await publish(b, 'm1') // while the client is away: its reconnect timer has not fired

      timers.fire()
      await eventually(texts, (t) => t.includes('m1'))
      expect(client.status).toMatchObject({ state: 'open', url: `${b.url('client')}${path}` })
      await publish(b, 'm2')
      await eventually(texts, (t) => t.includes('m2'))
      expect(texts()).toEqual(['m0', 'm1', 'm2'])
      expect(statuses.map((status) => status.state)).toEqual([
        'connecting',
        'open',
        'reconnecting',
        'connecting',
        'open',
      ])
    } finally {
      client.close()
    }
  })
})
