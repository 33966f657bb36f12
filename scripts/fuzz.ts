/**
 * `npm run fuzz`: throws random and mutated client frames and admin requests at a live
 * `tidings run` on 127.0.0.1, then checks that the server is up, every connection still
 * answers ping, a fresh subscriber loses nothing, the counters agree with what was
 * accepted, nothing crashed, and RSS returns to its warmed-up baseline.
 *
 *   npm run fuzz -- [--frames 100000] [--posts 10000] [--seed 1] [--connections 32]
 *                   [--time-limit 600] [--rss-tolerance 0.25] [--heap-tolerance 0.1]
 *                   [--processes 1]
 *
 * Inputs come from a seeded PRNG (`--seed`), so a failing run can be replayed. Exit 0 when
 * every check holds, 1 otherwise. `fuzz()` is also called by test/node/fuzz-short.test.ts.
 */
import { pathToFileURL } from 'node:url'
import { fdCount, HOSTILE_TARGETS } from './hardening/attacks.ts'
import {
  FuzzClient,
  handshake,
  hostileUpgrade,
  mangledWsFrame,
  mutatedHttpRequest,
  PING,
  rawExchange,
} from './hardening/fuzz-clients.ts'
import { ID_POOL, isPing, makeFrame, makeRequest, POST_INSTANCES } from './hardening/fuzz-inputs.ts'
import {
  flags,
  MB,
  mb,
  rssOf,
  sleep,
  startTidings,
  status,
  type TidingsProcess,
} from './hardening/node.ts'
import { Random } from './hardening/random.ts'

export interface FuzzOptions {
  frames: number
  posts: number
  seed: number
  connections: number
  /** Seconds before the run is abandoned as failed. */
  timeLimit: number
  /** Allowed RSS growth over the warmed-up baseline, as a fraction (plus a fixed 16 MB). */
  rssTolerance: number
  /** Allowed growth of the live heap (after full GCs) over its baseline, as a fraction (plus 2 MB). */
  heapTolerance: number
  /** The node's `processes`: with more than 1, the inputs go through the primary to workers. */
  processes: number
  log?: (line: string) => void
}

export const FUZZ_DEFAULTS: FuzzOptions = {
  frames: 100_000,
  posts: 10_000,
  seed: 1,
  connections: 32,
  timeLimit: 600,
  rssTolerance: 0.25,
  heapTolerance: 0.1,
  processes: 1,
}

export interface FuzzReport {
  ok: boolean
  failures: string[]
  frames: {
    sent: number
    pings: number
    rawFrames: number
    handshakes: number
    expectedCloses: Record<string, number>
    /** Hostile upgrade requests, how many were cut short, and any the server left hanging. */
    upgrades: number
    upgradesCut: number
    upgradesHanging: number
  }
  posts: {
    sent: number
    raw: number
    statuses: Record<string, number>
    accepted: Record<string, number>
    oversizeResets: number
    rawUnknown: number
  }
  rss: { baseline: number; peak: number; final: number }
  /** V8 heap in use after two full GCs, at the baseline and at the end. */
  heap: { baseline: number; final: number }
  seconds: number
}

const FRAME_BYTES = 16 * 1024
const BODY_BYTES = 16 * 1024
const SUBSCRIPTIONS = 200
const BATCH = 100
const CLIENT_PATHS = ['/', '/~fuzz1/', '/~fuzz2/']
/** Connections held through the whole run, so tracked instances keep their counters. */
const KEEPERS = ['/', '/~fuzz1/', '/~fuzz2/', '/~raw/']
/** Cut-short upgrades end at the handshake deadline, checked on the server's 1 s sweep. */
const HANDSHAKE_TIMEOUT_MS = 1000
const UPGRADE_WAIT_MS = HANDSHAKE_TIMEOUT_MS + 1000 + 3000

class Run {
  readonly failures: string[] = []
  readonly report: FuzzReport
  readonly deadline: number
  readonly clients: FuzzClient[] = []
  peak = 0

  constructor(
    readonly server: TidingsProcess,
    readonly options: FuzzOptions
  ) {
    this.deadline = Date.now() + options.timeLimit * 1000
    this.report = {
      ok: false,
      failures: this.failures,
      frames: {
        sent: 0,
        pings: 0,
        rawFrames: 0,
        handshakes: 0,
        expectedCloses: {},
        upgrades: 0,
        upgradesCut: 0,
        upgradesHanging: 0,
      },
      posts: { sent: 0, raw: 0, statuses: {}, accepted: {}, oversizeResets: 0, rawUnknown: 0 },
      rss: { baseline: 0, peak: 0, final: 0 },
      heap: { baseline: 0, final: 0 },
      seconds: 0,
    }
  }

  /** Forgets the warm-up's figures (its accepted posts stay counted). */
  resetCounts(): void {
    const accepted = this.report.posts.accepted
    Object.assign(this.report.frames, {
      sent: 0,
      pings: 0,
      rawFrames: 0,
      handshakes: 0,
      expectedCloses: {},
      upgrades: 0,
      upgradesCut: 0,
      upgradesHanging: 0,
    })
    Object.assign(this.report.posts, {
      sent: 0,
      raw: 0,
      statuses: {},
      accepted,
      oversizeResets: 0,
      rawUnknown: this.report.posts.rawUnknown,
    })
  }

  fail(message: string): void {
    if (this.failures.length < 50) this.failures.push(message)
  }

  get late(): boolean {
    return Date.now() > this.deadline
  }

  sampleRss(): number {
    const rss = rssOf(this.server.pid)
    this.peak = Math.max(this.peak, rss)
    return rss
  }

  /** One connection's share of the frames: batches, each closed by a ping whose pong proves it was all read. */
  async frameSlot(slot: number, frames: number, keep: boolean, random: Random): Promise<void> {
    const path = CLIENT_PATHS[slot % CLIENT_PATHS.length] as string
    let sent = 0
    while (sent < frames && !this.late) {
      let client: FuzzClient
      try {
        client = await FuzzClient.open(`${this.server.clientUrl}${path}`)
      } catch (error) {
        this.fail(`slot ${slot}: cannot connect: ${(error as Error).message}`)
        return
      }
      let expected = 0
      let mayClose = new Set<number>()
      while (sent < frames && client.open && !this.late) {
        mayClose = new Set()
        const n = Math.min(BATCH, frames - sent)
        for (let i = 0; i < n; i++) {
          const frame = makeFrame(random, FRAME_BYTES, SUBSCRIPTIONS)
          if (frame.mayClose) mayClose.add(frame.mayClose)
          if (frame.data.length > FRAME_BYTES) mayClose.add(1009)
          if (frame.data.includes('subscribe')) mayClose.add(1008)
          if (isPing(frame)) {
            expected++
            this.report.frames.pings++
          }
          client.send(frame.data, frame.binary)
          sent++
        }
        this.report.frames.sent += n
        client.send(PING, false)
        expected++
        try {
          await client.waitPongs(expected, 20_000)
        } catch (error) {
          this.fail(`slot ${slot}: stopped answering pings: ${(error as Error).message}`)
          client.ws.terminate()
          return
        }
      }
      if (client.closeCode !== undefined) {
        const code = client.closeCode
        if (mayClose.has(code)) {
          const key = String(code)
          this.report.frames.expectedCloses[key] = (this.report.frames.expectedCloses[key] ?? 0) + 1
        } else {
          this.fail(`slot ${slot}: closed with ${code}, which nothing in its last batch explains`)
        }
      } else if (keep) {
        this.clients.push(client)
      } else {
        await client.close()
      }
    }
  }

  /** Each connection has its own PRNG stream, so its inputs do not depend on scheduling. */
  async frames(total: number, connections: number, keep: boolean, salt: number): Promise<void> {
    const per = Math.ceil(total / connections)
    await Promise.all(
      Array.from({ length: connections }, (_, slot) =>
        this.frameSlot(slot, per, keep, this.stream(salt + slot))
      )
    )
  }

  stream(salt: number): Random {
    return new Random(Math.imul(this.options.seed, 0x9e3779b1) + salt * 7919)
  }

  /** Malformed WebSocket traffic on raw sockets: mangled handshakes and frame headers. */
  async rawFrames(total: number, random: Random): Promise<void> {
    const { port } = new URL(this.server.clientUrl)
    let left = total
    while (left > 0 && !this.late) {
      const count = Math.min(left, 1 + random.int(20))
      const frames: Buffer[] = []
      for (let i = 0; i < count; i++) {
        frames.push(
          mangledWsFrame(random, makeFrame(random, 512, SUBSCRIPTIONS).data.subarray(0, 2000))
        )
      }
      const path = random.pick([
        '/',
        '/~fuzz1/',
        '/~bad name/',
        `/~${'x'.repeat(200)}/`,
        '/?x=1',
        '/~/~/',
      ])
      const exchange = await rawExchange(
        Number(port),
        Buffer.concat([handshake(random, path), ...frames]),
        3000
      )
      // 501 "Use Websockets" is the answer to anything that is not an upgrade (as Aphlict).
      if (/^HTTP\/1\.1 5(?!01)\d\d/.test(exchange.response)) {
        this.fail(`raw upgrade answered ${exchange.response.slice(0, 40)}`)
      }
      this.report.frames.handshakes++
      this.report.frames.rawFrames += count
      left -= count
    }
  }

  /**
   * Hostile upgrade requests on raw sockets (scripts/hardening/fuzz-clients.ts): each one must
   * be answered, or, cut short, closed by the server at the handshake deadline.
   */
  async upgrades(total: number, random: Random): Promise<void> {
    const port = Number(new URL(this.server.clientUrl).port)
    const worker = async (): Promise<void> => {
      while (this.report.frames.upgrades < total && !this.late) {
        this.report.frames.upgrades++
        const { request, complete } = hostileUpgrade(random, HOSTILE_TARGETS)
        if (!complete) this.report.frames.upgradesCut++
        const exchange = await rawExchange(port, request, UPGRADE_WAIT_MS, false)
        // Upgraded (101) sockets stay open, as WebSockets do: answered all the same.
        if (exchange.timedOut && exchange.response === '') {
          this.report.frames.upgradesHanging++
          this.fail(
            `an upgrade was neither answered nor closed in ${UPGRADE_WAIT_MS} ms: ${JSON.stringify(request.toString('latin1').slice(0, 120))}`
          )
        } else if (/^HTTP\/1\.1 5(?!01|03)\d\d/.test(exchange.response)) {
          this.fail(`an upgrade was answered ${exchange.response.slice(0, 40)}`)
        }
      }
    }
    await Promise.all(Array.from({ length: 8 }, worker))
  }

  count(statusCode: number | string): void {
    const key = String(statusCode)
    this.report.posts.statuses[key] = (this.report.posts.statuses[key] ?? 0) + 1
  }

  accept(instance: string, n = 1): void {
    this.report.posts.accepted[instance] = (this.report.posts.accepted[instance] ?? 0) + n
  }

  async postOne(random: Random): Promise<void> {
    const request = makeRequest(random, BODY_BYTES)
    this.report.posts.sent++
    let response: Response
    try {
      response = await fetch(`${this.server.adminUrl}${request.path}`, {
        method: request.method,
        headers: request.headers,
        ...(request.body ? { body: new Uint8Array(request.body) } : {}),
        signal: AbortSignal.timeout(10_000),
      })
    } catch (error) {
      // The server answers 413 without reading the body; it may close before we finish writing.
      if (request.oversize) {
        this.report.posts.oversizeResets++
        return
      }
      this.fail(
        `${request.method} ${request.path}: ${(error as Error).message} ${String((error as { cause?: unknown }).cause ?? '')}`
      )
      return
    }
    const text = await response.text()
    this.count(response.status)
    if (!request.expect.includes(response.status)) {
      this.fail(
        `${request.method} ${request.path}: got ${response.status} (expected ${request.expect.join('/')}): ${text.slice(0, 200)}`
      )
      return
    }
    if (
      response.status >= 400 &&
      response.status < 500 &&
      response.status !== 404 &&
      response.status !== 405
    ) {
      const code = (JSON.parse(text) as { error?: { code?: string } }).error?.code
      if (typeof code !== 'string')
        this.fail(`${response.status} without an error code: ${text.slice(0, 200)}`)
    }
    if (response.status === 200 && request.instance !== undefined) this.accept(request.instance)
  }

  async rawPostOne(random: Random): Promise<void> {
    const { port } = new URL(this.server.adminUrl)
    const body = Buffer.from(
      JSON.stringify({ subscribers: [random.pick(ID_POOL)], raw: random.int(1e6) })
    )
    const exchange = await rawExchange(Number(port), mutatedHttpRequest(random, 'raw', body), 3000)
    this.report.posts.raw++
    const statuses = [...exchange.response.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((match) =>
      Number(match[1])
    )
    for (const code of statuses) {
      this.count(`raw ${code}`)
      if (code >= 500) this.fail(`raw request answered ${code}: ${exchange.response.slice(0, 200)}`)
    }
    this.accept('raw', statuses.filter((code) => code === 200).length)
    if (exchange.timedOut) this.report.posts.rawUnknown++
  }

  /** Eight workers, each with its own PRNG stream and share of the requests. */
  async posts(total: number, salt: number): Promise<void> {
    const worker = async (w: number): Promise<void> => {
      const random = this.stream(salt + w)
      for (let i = w; i < total && !this.late; i += 8) {
        if (random.chance(0.15)) await this.rawPostOne(random)
        else await this.postOne(random)
      }
    }
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)))
  }
}

/**
 * Once the clients are gone the server holds exactly the keepers: no connection, handshake or
 * descriptor left over from any request (within the handshake deadline and a sweep).
 */
async function checkReleased(run: Run, fdsBefore: number): Promise<void> {
  const deadline = Date.now() + HANDSHAKE_TIMEOUT_MS + 5000
  let budgets = { connections: -1, handshakes: -1 }
  let fds = Number.POSITIVE_INFINITY
  while (Date.now() < deadline) {
    const response = await fetch(`${run.server.adminUrl}/stats.json`, {
      signal: AbortSignal.timeout(5000),
    })
    budgets = ((await response.json()) as { budgets: typeof budgets }).budgets
    fds = fdCount(run.server.pid)
    // Two descriptors of slack: keep-alive connections to the admin port (this very request).
    const released = budgets.connections === KEEPERS.length && budgets.handshakes === 0
    if (released && fds <= fdsBefore + 2) return
    await sleep(100)
  }
  run.fail(
    `the server still holds ${budgets.connections} client connections (${budgets.handshakes} handshaking) and ${fds} descriptors after every client left; expected ${KEEPERS.length} and at most ${fdsBefore + 2}`
  )
}

/** After `settleMs` idle: the live heap after full GCs, and the lowest RSS of a few samples. */
async function settled(run: Run, settleMs: number): Promise<{ rss: number; heap: number }> {
  await sleep(settleMs)
  const { heapUsed } = await run.server.memory(true)
  const samples: number[] = []
  for (let i = 0; i < 5; i++) {
    samples.push(run.sampleRss())
    await sleep(200)
  }
  return { rss: Math.min(...samples), heap: heapUsed }
}

/** Every POST accepted for a tracked instance is counted by /status/ (raw: within the unknowns). */
async function checkCounters(run: Run): Promise<void> {
  const { accepted, rawUnknown } = run.report.posts
  for (const instance of [...POST_INSTANCES, 'raw']) {
    const got = (await status(run.server.adminUrl, instance))['messages.in'] as number
    const want = accepted[instance] ?? 0
    const ok = instance === 'raw' ? got >= want && got <= want + rawUnknown : got === want
    if (!ok)
      run.fail(
        `/status/?instance=${instance} messages.in is ${got}, but ${want} posts were accepted`
      )
  }
}

/** A fresh subscriber gets every one of `n` messages, in order. */
async function checkDelivery(run: Run, n: number): Promise<void> {
  const client = await FuzzClient.open(`${run.server.clientUrl}/~fuzz1/`)
  const received: number[] = []
  client.ws.on('message', (data) => {
    const value = JSON.parse(data.toString()) as { witness?: number }
    if (typeof value.witness === 'number') received.push(value.witness)
  })
  client.send(Buffer.from('{"command":"subscribe","data":["WITNESS"]}'), false)
  client.send(PING, false)
  await client.waitPongs(1, 10_000)
  for (let i = 0; i < n; i++) {
    const response = await fetch(`${run.server.adminUrl}/?instance=fuzz1`, {
      method: 'POST',
      body: JSON.stringify({ subscribers: ['WITNESS'], witness: i }),
      signal: AbortSignal.timeout(10_000),
    })
    if (response.status !== 200) run.fail(`witness post ${i} got ${response.status}`)
    else run.accept('fuzz1')
  }
  client.send(PING, false)
  await client.waitPongs(2, 10_000)
  const inOrder = received.length === n && received.every((value, i) => value === i)
  if (!inOrder)
    run.fail(`witness received ${received.length} of ${n} messages (in order: ${inOrder})`)
  await client.close()
}

export async function fuzz(partial: Partial<FuzzOptions> = {}): Promise<FuzzReport> {
  const options = { ...FUZZ_DEFAULTS, ...partial }
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`))
  const started = Date.now()
  const server = await startTidings({
    probe: true,
    config: {
      limits: {
        frameBytes: FRAME_BYTES,
        bodyBytes: BODY_BYTES,
        subscriptionsPerConnection: SUBSCRIPTIONS,
        framesPerSecond: 0,
        // The fuzzer's clients all come from 127.0.0.1, many upgrading at once.
        handshakesPerIp: 0,
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      },
      history: { age: 2000 },
      processes: options.processes,
    },
  })
  const run = new Run(server, options)
  const crashes = /UNCAUGHT EXCEPTION|Internal Server Error/
  server.watch(crashes)
  // Tracked instances must outlive the run, or the sweep would forget their counters.
  const keepers = await Promise.all(
    KEEPERS.map((path) => FuzzClient.open(`${server.clientUrl}${path}`))
  )
  try {
    log(`fuzz: server pid ${server.pid}, seed ${options.seed}; warming up`)
    await run.frames(Math.ceil(options.frames / 10), options.connections, false, 1000)
    await run.posts(Math.ceil(options.posts / 10), 2000)
    const baseline = await settled(run, 4000)
    run.report.rss.baseline = baseline.rss
    run.report.heap.baseline = baseline.heap
    run.resetCounts()
    log(
      `fuzz: baseline RSS ${mb(baseline.rss)}, heap ${mb(baseline.heap)}; ${options.frames} frames on ${options.connections} connections, ${options.posts} requests`
    )
    const sampler = setInterval(() => server.alive() && run.sampleRss(), 500)
    const fds = fdCount(server.pid)
    await Promise.all([
      run.frames(options.frames, options.connections, true, 3000),
      run.rawFrames(Math.ceil(options.frames / 50), run.stream(4000)),
      run.upgrades(Math.ceil(options.frames / 50), run.stream(6000)),
      run.posts(options.posts, 5000),
    ])
    clearInterval(sampler)
    if (run.late) run.fail(`time limit of ${options.timeLimit} s reached`)
    if (!server.alive()) throw new Error('the server exited')
    log(`fuzz: checking ${run.clients.length} surviving connections, counters and delivery`)
    await Promise.all(
      run.clients.map(async (client, i) => {
        const want = client.pongs + 1
        client.send(PING, false)
        if (!(await client.waitPongs(want, 10_000).catch(() => false)))
          run.fail(`connection ${i} did not answer a final ping`)
      })
    )
    await checkDelivery(run, 200)
    await checkCounters(run)
    const active = (await status(server.adminUrl, 'fuzz1'))['clients.active'] as number
    const open = run.clients.filter(
      (c) => c.open && new URL(c.ws.url).pathname === '/~fuzz1/'
    ).length
    if (active < open)
      run.fail(`clients.active for fuzz1 is ${active}, below the ${open} connections still open`)
    for (const client of run.clients) await client.close()
    await checkReleased(run, fds)
    if (server.count(crashes) > 0) {
      run.fail(
        `the server logged a crash or an internal error:\n${server.matches(crashes).join('\n')}`
      )
    }
    const rssLimit = run.report.rss.baseline * (1 + options.rssTolerance) + 16 * MB
    const heapLimit = run.report.heap.baseline * (1 + options.heapTolerance) + 2 * MB
    let final = await settled(run, 4000)
    for (let i = 0; i < 10 && (final.rss > rssLimit || final.heap > heapLimit); i++) {
      final = await settled(run, 2000)
    }
    run.report.rss.final = final.rss
    run.report.heap.final = final.heap
    run.report.rss.peak = run.peak
    if (final.rss > rssLimit) {
      run.fail(
        `RSS did not return to baseline: ${mb(final.rss)} > ${mb(rssLimit)} (baseline ${mb(run.report.rss.baseline)})`
      )
    }
    if (final.heap > heapLimit) {
      run.fail(
        `the live heap did not return to baseline: ${mb(final.heap)} > ${mb(heapLimit)} (baseline ${mb(run.report.heap.baseline)})`
      )
    }
  } catch (error) {
    run.fail(`aborted: ${(error as Error).message}`)
  } finally {
    for (const keeper of keepers) await keeper.close().catch(() => 0)
    for (const client of run.clients) client.ws.terminate()
    if (!server.alive())
      run.fail(`the server is not running; last output:\n${server.tail().slice(-20).join('\n')}`)
    const code = await server.stop(5000)
    if (code !== 0 && code !== null) run.fail(`the server exited with ${code} on SIGTERM`)
  }
  run.report.seconds = (Date.now() - started) / 1000
  run.report.ok = run.failures.length === 0
  return run.report
}

export function summary(report: FuzzReport): string {
  const { frames, posts, rss } = report
  return [
    `fuzz ${report.ok ? 'PASSED' : 'FAILED'} in ${report.seconds.toFixed(1)} s`,
    `  frames: ${frames.sent} over WebSocket (${frames.pings} pings), ${frames.rawFrames} mangled on ${frames.handshakes} raw handshakes; expected closes ${JSON.stringify(frames.expectedCloses)}`,
    `  upgrades: ${frames.upgrades} hostile (${frames.upgradesCut} cut short), ${frames.upgradesHanging} left hanging; connections, handshakes and descriptors back to the keepers' after`,
    `  requests: ${posts.sent} over HTTP + ${posts.raw} raw; statuses ${JSON.stringify(posts.statuses)}; oversize cut off ${posts.oversizeResets}; raw unknown ${posts.rawUnknown}`,
    `  accepted: ${JSON.stringify(posts.accepted)} (matches /status/ messages.in)`,
    `  RSS: baseline ${mb(rss.baseline)}, peak ${mb(rss.peak)}, final ${mb(rss.final)}; live heap after GC: baseline ${mb(report.heap.baseline)}, final ${mb(report.heap.final)}`,
    ...report.failures.map((failure) => `  FAIL ${failure}`),
  ].join('\n')
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const options = flags(process.argv.slice(2), {
    frames: FUZZ_DEFAULTS.frames,
    posts: FUZZ_DEFAULTS.posts,
    seed: FUZZ_DEFAULTS.seed,
    connections: FUZZ_DEFAULTS.connections,
    'time-limit': FUZZ_DEFAULTS.timeLimit,
    'rss-tolerance': FUZZ_DEFAULTS.rssTolerance,
    'heap-tolerance': FUZZ_DEFAULTS.heapTolerance,
    processes: FUZZ_DEFAULTS.processes,
  })
  const report = await fuzz({
    frames: options.frames,
    posts: options.posts,
    seed: options.seed,
    connections: options.connections,
    timeLimit: options['time-limit'],
    rssTolerance: options['rss-tolerance'],
    heapTolerance: options['heap-tolerance'],
    processes: options.processes,
  })
  process.stdout.write(`${summary(report)}\n`)
  process.exit(report.ok ? 0 : 1)
}
