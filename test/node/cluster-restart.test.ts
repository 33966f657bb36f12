/**
 * A node that comes back: its peers notice at once (it says hello), and the relays they
 * queued for it while it was away reach its history, not the live sockets of browsers that
 * connected after those messages were posted. Real processes on loopback.
 */
import { describe, expect, it } from 'vitest'
import { QUEUED_HEADER } from '../../src/relay/envelope.ts'
import { cleanups } from '../helpers/cleanups.ts'
import {
  adminStatus,
  meshConfig,
  nodePorts,
  peersOf,
  postMessage,
  subscriber,
  TidingsProcess,
} from '../helpers/cluster.ts'
import { startNode } from '../helpers/node-target.ts'
import { SILENCE_MS } from '../helpers/patience.ts'
import { eventually, subscribedClient, type TestClient } from '../helpers/ws-client.ts'

const later = cleanups()

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function subscribed(url: string, ids: string[]): Promise<TestClient> {
  const client = await subscribedClient(url, ids)
  later(() => client.close())
  return client
}

describe('a relay that waited in a queue', { timeout: 60_000 }, () => {
  it('goes live only to sockets that were open when it was posted, and to replay for the rest', async () => {
    const node = await startNode()
    later(() => node.close(1000))
    const url = `${node.url('client')}/`
    const before = await subscribed(url, ['P'])
    // Far enough apart that the posted time falls between the two sockets on a busy machine.
    await sleep(2000)
    const newStarted = Date.now()
    const after = await subscribed(url, ['P'])
    const queued = Date.now() - newStarted + 1000
    const status = await postMessage(
      node.url('admin'),
      { key: 'late', subscribers: ['P'] },
      { headers: { [QUEUED_HEADER]: String(queued) } }
    )
    expect(status).toBe(200)
    expect((await before.next()).key).toBe('late')
    await after.silence()
    after.send({ command: 'replay', data: { age: 60_000 } })
    expect((await after.next()).key).toBe('late')
    await after.silence()
    // A header that is not a queue time is ignored: delivered live as any message.
    expect(
      await postMessage(
        node.url('admin'),
        { key: 'odd', subscribers: ['P'] },
        { headers: { [QUEUED_HEADER]: '-5' } }
      )
    ).toBe(200)
    expect((await after.next()).key).toBe('odd')
  })
})

describe('a node that restarts', { timeout: 90_000 }, () => {
  it('is probed by its peers as soon as it says hello, and gets their backlog for replay', async () => {
    const ports = await nodePorts(2)
    // A back-off far longer than the test waits: only the hello brings the peer back early.
    const relay = { failures: 1, retryBase: 60_000, retryMax: 120_000, maxAge: 60_000 }
    const config = (i: number) =>
      meshConfig(ports[i] as (typeof ports)[number], ports, { relay, drain: { window: 0 } })
    const a = new TidingsProcess(ports[0] as (typeof ports)[number], config(0))
    let b = new TidingsProcess(ports[1] as (typeof ports)[number], config(1))
    later(() => a.dispose())
    await a.start()
    await b.start()
    await b.dispose()

    for (const key of ['q1', 'q2', 'q3']) {
      expect(await postMessage(a.adminUrl, { key, subscribers: ['P'] })).toBe(200)
    }
    await eventually(
      () => peersOf(a.adminUrl),
      (peers) => peers[1]?.state === 'down' && peers[1]?.queue === 3
    )

    b = new TidingsProcess(ports[1] as (typeof ports)[number], config(1))
    later(() => b.dispose())
    await b.start()
    const browser = await subscriber(b.clientUrl, ['P'])
    later(() => browser.client.close())
    await eventually(
      () => peersOf(a.adminUrl),
      (peers) => peers[1]?.state === 'up' && peers[1]?.queue === 0
    )
    expect(a.output.join('\n')).toContain('A cluster node started; probing 1 down peers now.')
    await eventually(
      () => adminStatus(b.adminUrl),
      (status) => status['history.size'] === 3
    )
    // Posted before this browser connected: not pushed live ...
    await sleep(SILENCE_MS)
    expect(browser.frames).toEqual([])
    // ... but there for the replay a reconnecting browser asks for, once each.
    browser.client.send({ command: 'replay', data: { age: 60_000 } })
    await eventually(
      () => browser.frames.length,
      (n) => n === 3
    )
    expect(browser.frames.map((frame) => frame.key)).toEqual(['q1', 'q2', 'q3'])
  })
})
