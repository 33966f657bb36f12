/**
 * The measurements, one function each: a broadcast (every client gets every message), a
 * targeted run (each message to one client) and admin throughput with no subscribers.
 * Each samples the server's probe around its window, so CPU and memory come from the
 * server process itself.
 */
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import type { Fleet } from './fleet-control.ts'
import { clockMicros, type Publisher, padding } from './publisher.ts'
import type { RunningServer } from './servers.ts'

export const SHARED_ID = 'PHID-BENCH-ALL'

export interface RunFigures {
  posts: number
  postFailures: number
  expected: number
  received: number
  deliveredRatio: number
  /** Deliveries per second: received / (last receipt − first POST start). */
  rate: number
  /** Server CPU (user + system) per delivery, µs. */
  cpuPerDelivery: number
  /** Server CPU per POSTed message, µs, and its user-space and kernel parts. */
  cpuPerMessage: number
  userPerMessage: number
  systemPerMessage: number
  /** Share of one core the server / the whole fleet used during the window. */
  serverCpuShare: number
  fleetCpuShare: number
  /** CPU the bench's own process (the publisher) used, in cores. */
  publisherCpuShare: number
  /** Busy share of the whole machine while POSTs were going out, in cores (all processes and the kernel). */
  machineBusy: number
  p50ms: number
  p99ms: number
  maxMs: number
  eldMaxMs: number
  rssMaxMB: number
  seconds: number
  closes: Record<string, number>
  ended: number
}

export interface RunOptions {
  messages: number
  subscribers: (i: number) => string[]
  expected: number
  payload: number
  timeoutMs: number
}

/** Busy and total jiffies of the whole machine (Linux /proc/stat; zeros elsewhere). */
function machineTicks(): { busy: number; total: number } {
  try {
    const fields =
      readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ??
      []
    const total = fields.reduce((sum, n) => sum + n, 0)
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
    return { busy: total - idle, total }
  } catch {
    return { busy: 0, total: 0 }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until the fleet has `expected` messages, or progress stalls for `stallMs`, or the deadline. */
async function settle(
  fleet: Fleet,
  expected: number,
  deadline: number,
  stallMs = 3000
): Promise<void> {
  let last = -1
  let lastChange = Date.now()
  while (Date.now() < deadline) {
    const received = await fleet.received()
    if (received >= expected) return
    if (received !== last) {
      last = received
      lastChange = Date.now()
    } else if (Date.now() - lastChange > stallMs) {
      return
    }
    await sleep(100)
  }
}

export async function measureRun(
  server: RunningServer,
  fleet: Fleet,
  publisher: Publisher,
  options: RunOptions
): Promise<RunFigures> {
  await fleet.reset()
  const fleetBefore = await fleet.report()
  const before = await server.sample({ reset: true })
  const ownBefore = process.cpuUsage()
  const ticksBefore = machineTicks()
  const deadline = Date.now() + options.timeoutMs
  const published = await publisher.run(
    options.messages,
    options.subscribers,
    padding(options.payload),
    options.timeoutMs
  )
  // Taken while the publisher was busy, so an idle tail does not dilute it.
  const ticksAfter = machineTicks()
  await settle(fleet, options.expected, deadline)
  const after = await server.sample()
  const own = process.cpuUsage(ownBefore)
  const windowEnd = clockMicros()
  const totals = await fleet.report()
  // CPU shares are over first POST → last receipt (or → now when nothing arrived).
  const windowSeconds =
    ((totals.lastAt > published.startedAt ? totals.lastAt : windowEnd) - published.startedAt) / 1e6
  const cpu = after.cpu.user + after.cpu.system - (before.cpu.user + before.cpu.system)
  const received = totals.received
  const seconds = received > 0 ? (totals.lastAt - published.startedAt) / 1e6 : Number.NaN
  return {
    posts: published.sent,
    postFailures: published.failed,
    expected: options.expected,
    received,
    deliveredRatio: options.expected > 0 ? received / options.expected : 1,
    rate: received / seconds,
    cpuPerDelivery: cpu / Math.max(1, received),
    cpuPerMessage: cpu / Math.max(1, published.sent),
    userPerMessage: (after.cpu.user - before.cpu.user) / Math.max(1, published.sent),
    systemPerMessage: (after.cpu.system - before.cpu.system) / Math.max(1, published.sent),
    serverCpuShare: cpu / 1e6 / windowSeconds,
    fleetCpuShare: (totals.cpuMicros - fleetBefore.cpuMicros) / 1e6 / windowSeconds,
    publisherCpuShare: (own.user + own.system) / 1e6 / windowSeconds,
    machineBusy:
      ticksAfter.total > ticksBefore.total
        ? ((ticksAfter.busy - ticksBefore.busy) / (ticksAfter.total - ticksBefore.total)) *
          cpus().length
        : Number.NaN,
    p50ms: totals.latency.percentile(50) / 1000,
    p99ms: totals.latency.percentile(99) / 1000,
    maxMs: totals.latency.max / 1000,
    eldMaxMs: after.eldMax,
    rssMaxMB: after.rssMax / 1048576,
    seconds,
    closes: totals.closes,
    ended: totals.ended,
  }
}

export interface AdminFigures {
  posts: number
  failures: number
  perSecond: number
  cpuPerPost: number
}

export async function measureAdmin(
  server: RunningServer,
  publisher: Publisher,
  posts: number,
  timeoutMs: number
): Promise<AdminFigures> {
  const before = await server.sample({ reset: true })
  const result = await publisher.run(posts, () => ['PHID-BENCH-NOBODY'], '', timeoutMs)
  const after = await server.sample()
  const cpu = after.cpu.user + after.cpu.system - (before.cpu.user + before.cpu.system)
  return {
    posts: result.sent,
    failures: result.failed,
    perSecond: result.sent / ((result.endedAt - result.startedAt) / 1e6),
    cpuPerPost: cpu / Math.max(1, result.sent),
  }
}

/** A target picker spreading messages over every client of the fleet, deterministically. */
export function eachClient(fleet: Fleet): (i: number) => string[] {
  const total = fleet.total
  return (i) => {
    // A multiplicative step co-prime with most sizes visits clients in a scattered order.
    const { shard, index } = fleet.locate((i * 7919) % total)
    return [`PHID-BENCH-${shard}-${index}`]
  }
}
