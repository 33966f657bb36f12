/**
 * `tidings restart` under load refuses nothing and loses nothing (the short version of
 * `npm run bench:restart`): a daemon with connected browser clients (tidings/browser on
 * `ws`), a probe opening a new WebSocket every 10 ms and a publisher posting 20 messages/s,
 * through a restart — one process, and a primary with two workers.
 */
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createClient, type WebSocketConstructor } from '../../clients/browser.ts'
import { HANDSHAKE_MS, OWED_MS } from '../helpers/patience.ts'
import { connectProbe } from '../helpers/probe.ts'
import { fixedPortConfig, runCli, tempDir } from '../helpers/process.ts'
import { eventually } from '../helpers/ws-client.ts'

const stops: string[] = []
afterEach(async () => {
  for (const path of stops.splice(0)) await runCli(['stop', '--config', path, '--timeout', '2000'])
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function restartUnderLoad(processes: number) {
  const dir = tempDir()
  const { client, admin, path } = await fixedPortConfig(dir, {
    processes,
    drain: { window: 1000, waves: 4 },
  })
  stops.push(path)
  expect((await runCli(['start', '--config', path], 60_000)).code).toBe(0)
  const url = `ws://127.0.0.1:${client}/`
  // Browser clients: they reconnect (after a short jittered delay) and replay what they
  // missed, and drop repeats by uniqueID, as the page's client does.
  const browsers = Array.from({ length: 20 }, () => {
    const seen: string[] = []
    const browser = createClient({
      servers: [url],
      subscriptions: ['PHID-RESTART'],
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      backoff: { baseMs: 100, capMs: 500 },
    })
    browser.on('message', (message) => seen.push(String(message.key)))
    return { browser, seen }
  })
  await sleep(500)
  const accepted: string[] = []
  let posting = true
  const publisher = (async () => {
    for (let n = 0; posting; n++) {
      const key = `r${n}`
      const response = await fetch(`http://127.0.0.1:${admin}/`, {
        method: 'POST',
        body: JSON.stringify({ key, subscribers: ['PHID-RESTART'] }),
        signal: AbortSignal.timeout(OWED_MS),
      }).catch(() => undefined)
      if (response?.status === 200) accepted.push(key)
      await sleep(50)
    }
  })()
  const connects = connectProbe(url, 10, HANDSHAKE_MS)
  await sleep(500)
  const restart = await runCli(['restart', '--config', path], 60_000)
  expect(restart.code).toBe(0)
  // Past the old process's drain (1 s) and the clients' return.
  await sleep(2000)
  posting = false
  await publisher
  await connects.stop()
  try {
    expect(connects.result.failed).toEqual([])
    expect(connects.result.opened).toBeGreaterThan(50)
    expect(accepted.length).toBeGreaterThan(40)
    for (const { seen } of browsers) {
      await eventually(
        () => accepted.filter((key) => !seen.includes(key)),
        (missing) => missing.length === 0
      )
      expect(seen.length).toBe(new Set(seen).size)
    }
  } finally {
    for (const { browser } of browsers) browser.close()
  }
}

describe('tidings restart under load', { timeout: 120_000 }, () => {
  it('refuses no connection and loses no message (one process)', async () => {
    await restartUnderLoad(1)
  })

  it('refuses no connection and loses no message (a primary and two workers)', async () => {
    await restartUnderLoad(2)
  })
})
