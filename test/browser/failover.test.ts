/**
 * tidings/browser in headless Chromium, on the demo page, against tidings nodes running as
 * separate processes on loopback. Assertions read what the page shows (DOM text).
 */
import type { Browser, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createPublisher } from '../../clients/publisher.ts'
import { type Demo, startDemo } from '../../examples/demo/serve.ts'
import {
  CHROMIUM,
  chromiumAvailable,
  type Gate,
  gate,
  launchChromium,
  type NodeProcess,
  spawnNode,
} from './helpers.ts'

const WAIT = { timeout: 15_000 }
const SUBSCRIBER = 'PHID-USER-browser'
const INSTANCE = 'browser-test'
const PATH = `/~${INSTANCE}/`

const skip = !chromiumAvailable() && !process.env.CI
if (skip) {
  console.warn(
    `Skipping the real-browser tests: ${CHROMIUM} is missing (install it with .ci/install-chromium.sh). In CI they run, and fail without it.`
  )
}

/** Texts of the messages the page lists, in order. */
function shown(page: Page): Promise<string[]> {
  return page.locator('#messages li .text').allTextContents()
}

async function waitForMessage(page: Page, text: string): Promise<void> {
  await page.locator('#messages li .text', { hasText: text }).first().waitFor(WAIT)
}

async function waitForStatus(page: Page, text: string): Promise<void> {
  await page.waitForFunction(
    (expected) => document.getElementById('status')?.textContent === expected,
    text,
    WAIT
  )
}

describe.skipIf(skip)('browser client in Chromium', { timeout: 90_000 }, () => {
  let browser: Browser
  const cleanup: (() => Promise<unknown>)[] = []

  beforeAll(async () => {
    browser = await launchChromium()
  })
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {})
  })
  afterAll(async () => {
    await browser?.close()
  })

  async function node(): Promise<NodeProcess> {
    const started = await spawnNode()
    cleanup.push(() => started.kill('SIGKILL'))
    return started
  }
  async function gated(target: NodeProcess, open: boolean): Promise<Gate> {
    const g = await gate(target.clientUrl, open)
    cleanup.push(() => g.close())
    return g
  }
  async function demo(servers: string[]): Promise<Demo> {
    const started = await startDemo({
      servers: servers.map((url) => `${url}${PATH}`),
      subscriptions: [SUBSCRIBER],
      clientOptions: { backoff: { baseMs: 200, capMs: 1000 } },
    })
    cleanup.push(() => started.close())
    return started
  }
  async function open(url: string): Promise<Page> {
    const page = await browser.newPage()
    cleanup.push(() => page.close())
    page.setDefaultTimeout(WAIT.timeout)
    await page.goto(url, { timeout: WAIT.timeout })
    return page
  }

  it('shows a notification as it arrives', async () => {
    const a = await node()
    const page = await open((await demo([a.clientUrl])).url)
    await waitForStatus(page, `open: ${a.clientUrl}${PATH}`)
    expect(await page.locator('#subscriptions').textContent()).toBe(SUBSCRIBER)

    const publisher = createPublisher({ servers: [a.adminUrl], instance: INSTANCE })
    await publisher.publish({ type: 'notification', subscribers: [SUBSCRIBER], text: 'hello' })
    await publisher.publish({ subscribers: ['PHID-USER-someone-else'], text: 'not for me' })
    await publisher.publish({ subscribers: [SUBSCRIBER], text: 'second' })
    await waitForMessage(page, 'second')
    expect(await shown(page)).toEqual(['hello', 'second'])
  })

  it('after its node is killed, reconnects to another and shows what was posted meanwhile exactly once', async () => {
    const [a, b] = await Promise.all([node(), node()])
    // B's gate stays shut until A is dead, so the page starts on A and cannot reach B early:
    // what is posted in between can only arrive through replay.
    const [gateA, gateB] = await Promise.all([gated(a, true), gated(b, false)])
    const page = await open((await demo([gateA.url, gateB.url])).url)
    await waitForStatus(page, `open: ${gateA.url}${PATH}`)

    // Posted to both nodes, as a cluster relay would: B's history holds it too, so B's
    // replay will send it again and the page must drop the repeat.
    const before = {
      subscribers: [SUBSCRIBER],
      text: 'before the kill',
      uniqueID: 'u-before-the-kill',
    }
    await createPublisher({ servers: [a.adminUrl], instance: INSTANCE }).publish(before)
    await createPublisher({ servers: [b.adminUrl], instance: INSTANCE }).publish(before)
    await waitForMessage(page, 'before the kill')

    await a.kill('SIGKILL')
    await page.waitForFunction(
      () => document.getElementById('status')?.dataset.state !== 'open',
      undefined,
      WAIT
    )

    // A is dead: the publisher fails over to B.
    const both = createPublisher({ servers: [a.adminUrl, b.adminUrl], instance: INSTANCE })
    const meanwhile = await both.publish({ subscribers: [SUBSCRIBER], text: 'while away' })
    expect(meanwhile.server).toBe(b.adminUrl)

    gateB.open = true
    await waitForStatus(page, `open: ${gateB.url}${PATH}`)
    await waitForMessage(page, 'while away')

    // A live message after the replay: frames arrive in order, so once it shows, any
    // repeat from the replay would already be on the page.
    await both.publish({ subscribers: [SUBSCRIBER], text: 'after' })
    await waitForMessage(page, 'after')
    expect(await shown(page)).toEqual(['before the kill', 'while away', 'after'])
    expect(await page.locator('#log').textContent()).toContain(`lost ${gateA.url}${PATH}: 1006`)
  })
})
