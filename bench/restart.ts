/**
 * `tidings restart` under load, measured (the long version of test/node/restart.test.ts).
 *
 *   npm run bench:restart -- [--clients 2000] [--processes 1] [--rate 20] [--probe-ms 10]
 *                            [--drain-window 10000] [--shards 2] [--max-minutes 10] [--json FILE]
 *
 * `--processes` may list several values (1,2): one run each. A run starts a daemon
 * (`node bin/tidings.js start --config FILE`, a config with a pidfile and a log file in a temp
 * dir, `processes`, `drain.window`; other settings default), then:
 * - `--clients` browser clients (clients/browser.ts createClient on `ws`, default backoff:
 *   they reconnect after a jittered delay, replay what they missed and drop repeats by
 *   uniqueID), all subscribed to one id, spread over `--shards` child processes (this file,
 *   with TIDINGS_BENCH_BROWSERS set) and over source addresses 127.0.0.2… (one per 500
 *   clients, so the per-address handshake limit is not what the bench measures). Each client's
 *   socket also counts raw frames per uniqueID, before the client's dedup;
 * - a probe, from 127.0.0.1, opening a new WebSocket every `--probe-ms` (one at a time);
 * - a publisher POSTing `--rate` messages/s, each with a uniqueID (keep-alive connections, as
 *   the test's fetch).
 * After 3 s it runs `node bin/tidings.js restart --config FILE`, keeps going until the old
 * process has exited (its pid polled; a zombie counts as exited) and 5 s more, then stops the
 * publisher and the probe and gives the clients up to 15 s to catch up (replays).
 *
 * Reported per run: probe attempts and failures (target 0), messages accepted (POST 200) and
 * not, per client the accepted messages never seen (max over clients; target 0), repeats
 * after the client's dedup (target 0) and raw repeated frames before it (replays of what
 * was already there: expected, the client drops them), the longest gap any client saw between
 * consecutive messages, ms from `restart` to the new pid in the pidfile, the command's own
 * duration, ms until the old process exited, and ms until every client was open again after
 * its drop. Prints a table and a JSON line; the daemon and every child are stopped at the end,
 * on errors, on SIGINT/SIGTERM and after `--max-minutes`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { resolve as resolvePath } from 'node:path'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import WebSocket from 'ws'
import { createClient, type WebSocketConstructor } from '../clients/browser.ts'
import { connectProbe } from '../test/helpers/probe.ts'
import { BIN, fixedPortConfig, runCli, tempDir } from '../test/helpers/process.ts'
import { processTree } from './proc.ts'
import { RpcChild, serveRpc } from './rpc.ts'
import { post, round, runSummary, sleep } from './scale.ts'

const BROWSERS_ENV = 'TIDINGS_BENCH_BROWSERS'
const SUBSCRIPTION = 'PHID-USER-restartbench'.padEnd(30, 'x')

// --- the browser shard ------------------------------------------------------------------------

interface StartCommand {
  cmd: 'start'
  url: string
  from: number
  count: number
  addresses: number
}

type BrowserCommand =
  | StartCommand
  | { cmd: 'open' }
  | { cmd: 'report'; accepted: string[]; since: number }
  | { cmd: 'close' }

interface BrowserReport {
  clients: number
  open: number
  /** Per client: accepted keys not seen. */
  missing: number[]
  /** Keys the client's listener got more than once (after its dedup). */
  duplicates: number
  /** Frames whose uniqueID the client's sockets had already had (before its dedup). */
  rawDuplicates: number
  frames: number
  messages: number
  /** Per client: the longest gap between consecutive messages (ms). */
  maxGaps: number[]
  /** Per client: the last time (ms, wall clock) it went open after losing its connection since `since`; 0 if it lost none. */
  backAt: number[]
  /** Per client: connections lost since `since`. */
  drops: number[]
  /** Close codes clients saw. */
  codes: Record<string, number>
}

function browserShard(): void {
  process.on('disconnect', () => process.exit(0))
  setTimeout(() => process.exit(3), 3_600_000).unref()
  const UNIQUE = Buffer.from('"uniqueID":"')

  interface Browser {
    client: ReturnType<typeof createClient>
    seen: Set<string>
    raw: Set<string>
    duplicates: number
    rawDuplicates: number
    frames: number
    lastAt: number
    maxGap: number
    /** [wall clock ms, state, code] of each status change. */
    statuses: [number, string, number | undefined][]
  }
  const browsers: Browser[] = []

  /** `ws` with a source address, counting each frame's uniqueID before the client sees it. */
  function socketFor(browser: () => Browser, localAddress: string): WebSocketConstructor {
    return class extends WebSocket {
      constructor(url: string) {
        super(url, { localAddress, perMessageDeflate: false })
        this.on('message', (data: Buffer) => {
          const at = data.indexOf(UNIQUE)
          if (at < 0) return
          const start = at + UNIQUE.length
          const id = data.toString('latin1', start, data.indexOf(34, start))
          const b = browser()
          b.frames++
          if (b.raw.has(id)) b.rawDuplicates++
          else b.raw.add(id)
        })
      }
    } as unknown as WebSocketConstructor
  }

  async function start(command: StartCommand) {
    for (let local = 0; local < command.count; local++) {
      const i = command.from + local
      const address = `127.0.0.${2 + (i % command.addresses)}`
      const browser: Browser = {
        client: undefined as unknown as Browser['client'],
        seen: new Set(),
        raw: new Set(),
        duplicates: 0,
        rawDuplicates: 0,
        frames: 0,
        lastAt: 0,
        maxGap: 0,
        statuses: [],
      }
      browser.client = createClient({
        servers: [command.url],
        subscriptions: [SUBSCRIPTION],
        WebSocket: socketFor(() => browser, address),
        backoff: { baseMs: 1000 },
      })
      browser.client.on('status', (status) => {
        browser.statuses.push([Date.now(), status.state, status.code])
      })
      browser.client.on('message', (message) => {
        const now = Date.now()
        const key = String(message.key)
        if (browser.seen.has(key)) browser.duplicates++
        else browser.seen.add(key)
        if (browser.lastAt > 0) browser.maxGap = Math.max(browser.maxGap, now - browser.lastAt)
        browser.lastAt = now
      })
      browsers.push(browser)
      // 50 new clients every 25 ms: a page-load wave, not one burst.
      if (local % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 25))
    }
    const deadline = Date.now() + 60_000
    while (openCount() < browsers.length && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return { open: openCount() }
  }

  const openCount = () => browsers.filter((b) => b.client.status.state === 'open').length

  function report(accepted: string[], since: number): BrowserReport {
    const codes: Record<string, number> = {}
    const backAt: number[] = []
    const drops: number[] = []
    for (const b of browsers) {
      let lost = 0
      let back = 0
      for (const [at, state, code] of b.statuses) {
        if (at < since) continue
        if (state === 'reconnecting') {
          lost++
          codes[String(code)] = (codes[String(code)] ?? 0) + 1
        } else if (state === 'open' && lost > 0) back = at
      }
      drops.push(lost)
      backAt.push(lost > 0 && b.client.status.state === 'open' ? back : lost > 0 ? -1 : 0)
    }
    return {
      clients: browsers.length,
      open: openCount(),
      missing: browsers.map((b) => accepted.filter((key) => !b.seen.has(key)).length),
      duplicates: browsers.reduce((sum, b) => sum + b.duplicates, 0),
      rawDuplicates: browsers.reduce((sum, b) => sum + b.rawDuplicates, 0),
      frames: browsers.reduce((sum, b) => sum + b.frames, 0),
      messages: browsers.reduce((sum, b) => sum + b.seen.size, 0),
      maxGaps: browsers.map((b) => b.maxGap),
      backAt,
      drops,
      codes,
    }
  }

  async function handle(command: BrowserCommand): Promise<unknown> {
    switch (command.cmd) {
      case 'start':
        return start(command)
      case 'open':
        return { open: openCount() }
      case 'report':
        return report(command.accepted, command.since)
      case 'close':
        for (const b of browsers) b.client.close()
        return { ok: true }
    }
  }

  serveRpc(handle)
}

// --- the parent -------------------------------------------------------------------------------

const children = new Set<ChildProcess>()
/** The start time of a process (field 22 of /proc/<pid>/stat), to tell it from a later one with its pid. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** Daemon processes seen (primaries and workers) by pid, with their start times. */
const daemonPids = new Map<number, string | undefined>()

function remember(root: number): void {
  for (const pid of processTree(root)) daemonPids.set(pid, startTime(pid))
}

/** Temp dirs (config, pidfile, logs) of runs not finished yet. */
const dirs = new Set<string>()

/**
 * Kills the children and whatever daemon process is still the one seen (never a reused pid),
 * and removes the temp dirs.
 */
function killEverything(): void {
  for (const child of children) child.kill('SIGKILL')
  for (const [pid, started] of daemonPids) {
    if (started === undefined || startTime(pid) !== started) continue
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
}

/** Alive and not a zombie (an exited daemon nobody reaps still answers signal 0). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

function readPid(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

type Shard = RpcChild<BrowserCommand>

function startShard(index: number): Shard {
  const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [BROWSERS_ENV]: String(index) },
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return new RpcChild<BrowserCommand>(`shard ${index}`, child)
}

function parse() {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '2000' },
      processes: { type: 'string', default: '1' },
      rate: { type: 'string', default: '20' },
      'probe-ms': { type: 'string', default: '10' },
      'drain-window': { type: 'string', default: '10000' },
      shards: { type: 'string', default: '2' },
      'max-minutes': { type: 'string', default: '10' },
      json: { type: 'string' },
    },
  })
  return {
    clients: Number(values.clients),
    processes: values.processes.split(',').map((p) => (p.trim() === 'auto' ? 'auto' : Number(p))),
    rate: Number(values.rate),
    probeMs: Number(values['probe-ms']),
    drainWindow: Number(values['drain-window']),
    shards: Number(values.shards),
    maxMinutes: Number(values['max-minutes']),
    json: values.json,
  }
}

type Options = ReturnType<typeof parse>

/** Posts `rate`/s (each with a uniqueID) until stopped; keeps the keys answered 200. */
function publisher(adminUrl: string, rate: number) {
  const pool = new Pool(adminUrl, { connections: 8, pipelining: 1 })
  const result = { posted: 0, accepted: [] as string[], refused: [] as number[] }
  const epoch = Math.floor(Date.now() / 1000)
  let running = true
  const pending = new Set<Promise<void>>()
  const done = (async () => {
    const start = performance.now()
    for (let n = 0; running; n++) {
      const key = `${epoch}${String(n).padStart(9, '0')}`
      const body = JSON.stringify({
        type: 'notification',
        key,
        uniqueID: randomUUID().replaceAll('-', ''),
        subscribers: [SUBSCRIPTION],
      })
      result.posted++
      const request = post(pool, body).then((ok) => {
        if (ok) result.accepted.push(key)
        else result.refused.push(Date.now())
        pending.delete(request)
      })
      pending.add(request)
      const wait = start + ((n + 1) * 1000) / rate - performance.now()
      if (wait > 0) await sleep(wait)
    }
    await Promise.all(pending)
    await pool.destroy()
  })()
  return {
    result,
    stop: async () => {
      running = false
      await done
    },
  }
}

interface Row {
  processes: number | 'auto'
  clients: number
  connected: number
  drainWindowMs: number
  probeAttempts: number
  probeFailed: number
  probeErrors: string[]
  posted: number
  accepted: number
  refusedPosts: number
  lostMaxPerClient: number
  lostTotal: number
  clientsMissingSome: number
  duplicatesAfterDedup: number
  rawDuplicateFrames: number
  frames: number
  longestGapMs: number
  gapP50Ms: number
  gapP99Ms: number
  restartToNewPidMs: number | null
  restartCommandMs: number
  restartExitCode: number | null
  oldExitedMs: number | null
  allBackMs: number | null
  clientsDropped: number
  clientsNotBack: number
  closeCodes: Record<string, number>
  load1Before: number
  load1After: number
  runSeconds: number
}

const quantile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

async function runOnce(options: Options, processes: number | 'auto'): Promise<Row> {
  const started = performance.now()
  const load1Before = round(loadavg()[0] as number)
  console.error(
    `[${new Date().toISOString()}] restart, processes ${processes}: starting (load ${load1Before})`
  )
  const dir = tempDir('tidings-bench-restart-')
  dirs.add(dir)
  const { client, path, adminUrl, config } = await fixedPortConfig(dir, {
    processes,
    drain: { window: options.drainWindow },
  })
  const pidfile = config.pidfile
  const shards: Shard[] = []
  try {
    const startResult = await runCli(['start', '--config', path], 60_000)
    if (startResult.code !== 0)
      throw new Error(`start failed: ${startResult.stdout}${startResult.stderr}`)
    const oldPid = readPid(pidfile)
    if (oldPid === undefined) throw new Error('no pid after start')
    remember(oldPid)
    const url = `ws://127.0.0.1:${client}/`

    for (let s = 0; s < options.shards; s++) shards.push(startShard(s))
    await Promise.all(shards.map((shard) => shard.ready))
    const per = Math.ceil(options.clients / shards.length)
    const addresses = Math.max(1, Math.ceil(options.clients / 500))
    const opened = await Promise.all(
      shards.map((shard, s) =>
        shard.call<{ open: number }>({
          cmd: 'start',
          url,
          from: s * per,
          count: Math.max(0, Math.min(per, options.clients - s * per)),
          addresses,
        })
      )
    )
    const connected = opened.reduce((sum, o) => sum + o.open, 0)
    console.error(`  ${connected} of ${options.clients} clients open`)

    const publishing = publisher(adminUrl, options.rate)
    const probing = connectProbe(url, options.probeMs, 5000)
    await sleep(3000)

    const restartAt = Date.now()
    const restartStart = performance.now()
    let newPidAt: number | undefined
    const restart = runCli(['restart', '--config', path], 90_000)
    let commandDone = false
    let restartMs = 0
    const command = restart.then((result) => {
      commandDone = true
      restartMs = performance.now() - restartStart
      return result
    })
    let oldExitAt: number | undefined
    const deadline = performance.now() + options.drainWindow + 60_000
    while (performance.now() < deadline) {
      if (newPidAt === undefined) {
        const pid = readPid(pidfile)
        if (pid !== undefined && pid !== oldPid) {
          newPidAt = performance.now()
          remember(pid)
        }
      }
      if (oldExitAt === undefined && !running(oldPid)) oldExitAt = performance.now()
      if (commandDone && newPidAt !== undefined && oldExitAt !== undefined) break
      await sleep(newPidAt === undefined ? 10 : 50)
    }
    const restartResult = await command
    const newPid = readPid(pidfile)
    if (newPid !== undefined) remember(newPid)
    console.error(
      `  restart: exit ${restartResult.code} after ${round(restartMs, 0)} ms, new pid after ${newPidAt === undefined ? '–' : round(newPidAt - restartStart, 0)} ms, old process gone after ${oldExitAt === undefined ? '–' : round(oldExitAt - restartStart, 0)} ms`
    )
    await sleep(5000)
    await probing.stop()
    await publishing.stop()

    // Let the clients catch up (reconnect delays, replays), bounded.
    const accepted = publishing.result.accepted
    let reports: BrowserReport[] = []
    const settle = Date.now() + 15_000
    for (;;) {
      reports = await Promise.all(
        shards.map((shard) =>
          shard.call<BrowserReport>({ cmd: 'report', accepted, since: restartAt })
        )
      )
      const missing = reports.some((r) => r.missing.some((m) => m > 0))
      const open = reports.reduce((sum, r) => sum + r.open, 0)
      if ((!missing && open === connected) || Date.now() > settle) break
      await sleep(500)
    }
    const missing = reports.flatMap((r) => r.missing)
    const gaps = reports.flatMap((r) => r.maxGaps)
    const backAt = reports.flatMap((r) => r.backAt)
    const drops = reports.flatMap((r) => r.drops)
    const codes: Record<string, number> = {}
    for (const r of reports) {
      for (const [code, n] of Object.entries(r.codes)) codes[code] = (codes[code] ?? 0) + n
    }
    const notBack = backAt.filter((at) => at < 0).length
    const lastBack = Math.max(0, ...backAt)
    const row: Row = {
      processes,
      clients: options.clients,
      connected,
      drainWindowMs: options.drainWindow,
      probeAttempts: probing.result.attempts,
      probeFailed: probing.result.failed.length,
      probeErrors: [...new Set(probing.result.failed.map((f) => f.error))].slice(0, 5),
      posted: publishing.result.posted,
      accepted: accepted.length,
      refusedPosts: publishing.result.refused.length,
      lostMaxPerClient: Math.max(0, ...missing),
      lostTotal: missing.reduce((a, b) => a + b, 0),
      clientsMissingSome: missing.filter((m) => m > 0).length,
      duplicatesAfterDedup: reports.reduce((sum, r) => sum + r.duplicates, 0),
      rawDuplicateFrames: reports.reduce((sum, r) => sum + r.rawDuplicates, 0),
      frames: reports.reduce((sum, r) => sum + r.frames, 0),
      longestGapMs: Math.max(0, ...gaps),
      gapP50Ms: quantile(gaps, 50),
      gapP99Ms: quantile(gaps, 99),
      restartToNewPidMs: newPidAt === undefined ? null : round(newPidAt - restartStart, 0),
      restartCommandMs: round(restartMs, 0),
      restartExitCode: restartResult.code,
      oldExitedMs: oldExitAt === undefined ? null : round(oldExitAt - restartStart, 0),
      allBackMs: notBack > 0 || lastBack === 0 ? null : lastBack - restartAt,
      clientsDropped: drops.filter((d) => d > 0).length,
      clientsNotBack: notBack,
      closeCodes: codes,
      load1Before,
      load1After: round(loadavg()[0] as number),
      runSeconds: round((performance.now() - started) / 1000, 1),
    }
    console.error(
      `  probe ${row.probeAttempts} attempts, ${row.probeFailed} failed; ${row.accepted} accepted, lost max ${row.lostMaxPerClient}/client, dup ${row.duplicatesAfterDedup} (raw ${row.rawDuplicateFrames}); longest gap ${row.longestGapMs} ms; all back after ${row.allBackMs ?? '–'} ms`
    )
    return row
  } finally {
    await Promise.all(shards.map((shard) => shard.call({ cmd: 'close' }, 5000).catch(() => {})))
    for (const shard of shards) shard.child.kill('SIGKILL')
    await runCli(['stop', '--config', path, '--timeout', '5000'], 30_000).catch(() => undefined)
    for (const pid of [...daemonPids.keys()]) {
      if (!running(pid)) daemonPids.delete(pid)
    }
    rmSync(dir, { recursive: true, force: true })
    dirs.delete(dir)
  }
}

function table(rows: Row[]): string {
  const dash = (value: number | null) => (value === null ? '–' : String(value))
  const lines = [
    '| processes | clients | probe attempts | probe failed | accepted | POSTs refused | lost max/client | dup (after dedup) | raw repeated frames | longest gap ms (p50 / p99 of per-client max) | restart → new pid ms | restart command ms | old exited ms | all clients back ms |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ]
  for (const r of rows) {
    lines.push(
      `| ${r.processes} | ${r.connected} | ${r.probeAttempts} | ${r.probeFailed} | ${r.accepted} | ${r.refusedPosts} | ${r.lostMaxPerClient} | ${r.duplicatesAfterDedup} | ${r.rawDuplicateFrames} | ${r.longestGapMs} (${r.gapP50Ms} / ${r.gapP99Ms}) | ${dash(r.restartToNewPidMs)} | ${r.restartCommandMs} | ${dash(r.oldExitedMs)} | ${dash(r.allBackMs)}${r.clientsNotBack > 0 ? ` (${r.clientsNotBack} not back)` : ''} |`
    )
  }
  return lines.join('\n')
}

async function main(): Promise<void> {
  const options = parse()
  const started = performance.now()
  setTimeout(() => {
    console.error(`--max-minutes ${options.maxMinutes} reached: stopping every process`)
    killEverything()
    process.exit(2)
  }, options.maxMinutes * 60_000).unref()
  const loadBefore = loadavg()
  console.error(
    `tidings bench:restart: processes ${options.processes.join(',')}, ${options.clients} clients over ${options.shards} shards, ${options.rate} msg/s, probe every ${options.probeMs} ms, drain.window ${options.drainWindow} ms; load ${loadBefore.map((l) => round(l)).join(' ')}`
  )
  const rows: Row[] = []
  const failures: { processes: number | 'auto'; error: string }[] = []
  try {
    for (const processes of options.processes) {
      try {
        rows.push(await runOnce(options, processes))
      } catch (error) {
        console.error(`  processes ${processes} failed: ${(error as Error).stack ?? error}`)
        failures.push({ processes, error: String(error) })
      }
    }
  } finally {
    killEverything()
  }
  const summary = runSummary(loadBefore, started)
  console.log(table(rows))
  for (const failure of failures)
    console.log(`\nprocesses ${failure.processes} failed: ${failure.error}`)
  const report = {
    bench: 'restart',
    ...summary,
    bin: BIN,
    params: options,
    dedupNote:
      'duplicatesAfterDedup: keys the client listener got twice; rawDuplicateFrames: frames whose uniqueID the client had already received, counted on its sockets before its dedup (replay overlap)',
    rows,
    failures,
  }
  console.log(`\n${JSON.stringify(report)}`)
  if (options.json) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`)
  process.exit(failures.length > 0 ? 1 : 0)
}

const isMain =
  process.argv[1] !== undefined && resolvePath(process.argv[1]) === import.meta.filename

if (process.env[BROWSERS_ENV] !== undefined) browserShard()
else if (isMain) {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`${signal}: stopping every process`)
      killEverything()
      process.exit(130)
    })
  }
  process.once('exit', killEverything)
  await main()
}
