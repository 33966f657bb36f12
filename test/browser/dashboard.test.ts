/**
 * The admin dashboard in headless Debian Chromium (playwright-core): it loads under its
 * Content-Security-Policy without errors, and its figures follow real sockets and posted
 * messages. A screenshot goes to test-artifacts/ (kept by CI, not committed).
 * In CI (CI set) Chromium must be there; elsewhere the test is skipped when it is missing.
 */
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningServer } from '../../adapters/node/server.ts'
import { startNode } from '../helpers/node-target.ts'
import { freePort } from '../helpers/process.ts'
import { RedisServer, redisAvailable } from '../helpers/redis.ts'
import { connect, type TestClient } from '../helpers/ws-client.ts'
import { CHROMIUM, chromiumAvailable, launchChromium } from './helpers.ts'

const ARTIFACTS = resolve(fileURLToPath(import.meta.url), '../../../test-artifacts')
const available = chromiumAvailable()
const mustRun = Boolean(process.env.CI)

if (!available && !mustRun) {
  console.warn(
    `dashboard browser test skipped: ${CHROMIUM} not found (apt-get install -y chromium, or .ci/install-chromium.sh)`
  )
}

async function text(page: Page, selector: string): Promise<string> {
  return (await page.textContent(selector))?.trim() ?? ''
}

/** Polls the page until `read` satisfies `ok`; fails with the last value after `timeoutMs`. */
async function until<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 10_000
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last = await read()
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`dashboard did not show it; last: ${String(last)}`)
    await new Promise((r) => setTimeout(r, 100))
    last = await read()
  }
  return last
}

const number = (value: string): number => Number(value.replace(/,/g, ''))

describe.skipIf(!available && !mustRun)('admin dashboard in Chromium', { timeout: 90_000 }, () => {
  let browser: Browser
  let server: RunningServer
  const clients: TestClient[] = []
  let deadPeer: number

  beforeAll(async () => {
    if (!available)
      throw new Error(`${CHROMIUM} is missing; CI must install it (apt-get install -y chromium).`)
    deadPeer = await freePort() // nothing listens there: the peer shows as failing
    server = await startNode({
      extra: {
        cluster: [{ host: '127.0.0.1', port: deadPeer, protocol: 'http' }],
        relay: { retryBase: 20, retryMax: 100, failures: 2, timeout: 500, connectTimeout: 500 },
      },
    })
    browser = await launchChromium()
  })

  afterAll(async () => {
    for (const client of clients) client.ws.terminate()
    await browser?.close()
    await server?.close(1000)
  })

  it('loads, then shows connections, messages, deliveries, instances and peer health as they change', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    const problems: string[] = []
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`)
    })
    const admin = server.url('admin')
    const response = await page.goto(`${admin}/dashboard/?interval=300`)
    expect(response?.status()).toBe(200)
    expect(await page.title()).toBe('tidings dashboard')
    await until(
      () => text(page, '#state'),
      (s) => s === 'ready'
    )
    expect(await text(page, '#connections')).toBe('0')
    expect(await text(page, '#fingerprint')).toBe(server.tidings.fingerprint)

    for (let i = 0; i < 3; i++) {
      const client = await connect(`${server.url('client')}/`)
      client.send({ command: 'subscribe', data: ['PHID-DASH'] })
      await client.ping()
      clients.push(client)
    }
    const watcher = await connect(`${server.url('client')}/~ops/`)
    clients.push(watcher)
    await until(
      () => text(page, '#connections'),
      (s) => s === '4'
    )
    expect(await text(page, '#subscriptions')).toBe('3')

    // Post until the page has seen a non-zero rate (bounded), then check the totals.
    let posted = 0
    await until(
      async () => {
        for (let i = 0; i < 5; i++) {
          const result = await fetch(`${admin}/`, {
            method: 'POST',
            body: JSON.stringify({ key: `d${posted}`, subscribers: ['PHID-DASH'] }),
          })
          expect(result.status).toBe(200)
          posted++
        }
        return text(page, '#messages-rate')
      },
      (rate) => rate !== '-' && number(rate) > 0,
      20_000
    )
    await until(
      () => text(page, '#messages-total'),
      (s) => number(s) === posted
    )
    await until(
      () => text(page, '#deliveries-total'),
      (s) => number(s) === posted * 3
    )
    expect(number(await text(page, '#deliveries-rate'))).toBeGreaterThanOrEqual(0)
    expect(number(await text(page, '#max-deliveries'))).toBeGreaterThan(0)
    const line = await page.getAttribute('#chart-deliveries polyline', 'points')
    expect(line?.split(' ').length).toBeGreaterThan(1)

    const row = page.locator('#instances tbody tr[data-instance="default"] td')
    await until(
      async () => (await row.allTextContents()).join('|'),
      (s) => s.startsWith('default|3|3|')
    )
    const cells = await row.allTextContents()
    expect(number(cells[3] as string)).toBe(posted)
    expect(number(cells[4] as string)).toBe(posted * 3)
    expect(await page.locator('#instances tbody tr[data-instance="ops"]').count()).toBe(1)

    const peer = page.locator(`#peers tbody tr[data-peer="http://127.0.0.1:${deadPeer}"] td`)
    const peerCells = await until(
      () => peer.allTextContents(),
      (cells) => cells.length > 0 && ['retrying', 'down', 'probing'].includes(cells[1] ?? '')
    )
    expect(peerCells[7]).toBe('never')
    expect(await page.locator('#peers .dot.down').count()).toBe(1)
    expect(await page.isHidden('#no-peers')).toBe(true)
    expect(await page.isVisible('#no-backplane')).toBe(true)

    // Draining shows on the page before the server goes away.
    const drained = server.drain({ windowMs: 1500, waves: 2 })
    await until(
      () => text(page, '#state'),
      (s) => s === 'draining'
    )

    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true })
    // (Once the server has gone, the page's failed polls would log errors of their own.)
    expect(problems).toEqual([])
    await drained
  })

  it.skipIf(!redisAvailable())(
    'shows the backplane: its state, what it published and a lost connection',
    async () => {
      const redis = await RedisServer.start()
      const node = await startNode({ extra: { backplane: { type: 'redis', url: redis.url } } })
      const page = await browser.newPage()
      try {
        const client = await connect(`${node.url('client')}/`)
        clients.push(client)
        client.send({ command: 'subscribe', data: ['P'] })
        await client.ping()
        for (let i = 0; i < 4; i++) {
          await fetch(`${node.url('admin')}/`, { method: 'POST', body: '{"subscribers":["P"]}' })
        }
        await page.goto(`${node.url('admin')}/dashboard/?interval=300`)
        const row = page.locator('#backplane tbody tr td')
        const cells = await until(
          () => row.allTextContents(),
          (c) => c[0] === 'redis' && c[1] === 'up' && c[3] === '4'
        )
        expect(cells[7]).toBe('1')
        expect(cells[8]).toMatch(/^≤ [\d.]+ ms$/)
        expect(await page.isHidden('#no-backplane')).toBe(true)
        await redis.kill()
        await until(
          async () => (await row.allTextContents())[1] ?? '',
          (state) => state.startsWith('down (')
        )
        expect(await page.locator('#backplane .dot.down').count()).toBe(1)
      } finally {
        await page.close()
        await node.close(1000)
        await redis.dispose()
      }
    }
  )
})
