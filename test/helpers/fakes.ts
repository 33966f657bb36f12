/** Fakes for the core's ports: a controllable clock, a recording socket, a manual scheduler. */
import { parseConfig } from '../../src/config/parse.ts'
import type { HistoryOptions } from '../../src/config/schema.ts'
import { Hub, type HubLimits } from '../../src/hub/hub.ts'
import { newLimitStats } from '../../src/limit-stats.ts'
import { LogLimiter } from '../../src/log-limiter.ts'
import { createNode, type NodeOptions } from '../../src/node/node.ts'
import type { ClientSocket, Clock, Logger, Outbound, Scheduler } from '../../src/ports.ts'

export class FakeClock implements Clock {
  constructor(public time = 1_000_000) {}
  now(): number {
    return this.time
  }
  advance(ms: number): void {
    this.time += ms
  }
}

export class FakeSocket implements ClientSocket {
  readonly sent: Outbound[] = []
  closed: { code: number; reason: string } | undefined
  /** Waiting output, as a test sets it (nothing is counted automatically). */
  pending = 0
  sendMessage(message: Outbound): void {
    this.sent.push(message)
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason }
  }
  /** The frames received so far, parsed. */
  frames(): Record<string, unknown>[] {
    return this.sent.map((message) => JSON.parse(message.text) as Record<string, unknown>)
  }
}

/** Runs deferred tasks only when asked, so tests see each fan-out slice. */
export class ManualScheduler implements Scheduler {
  readonly tasks: (() => void)[] = []
  defer(task: () => void): void {
    this.tasks.push(task)
  }
  runAll(): void {
    while (this.tasks.length > 0) this.tasks.shift()?.()
  }
}

export class RecordingLogger implements Logger {
  readonly lines: string[] = []
  constructor(readonly tracing = false) {}
  log(message: string): void {
    this.lines.push(message)
  }
  warn(message: string): void {
    this.lines.push(`warn: ${message}`)
  }
  trace(message: string): void {
    if (this.tracing) this.lines.push(`trace: ${message}`)
  }
}

/** A Hub on fakes, with the default limits except `limits`. */
export function testHub(
  options: {
    limits?: Partial<HubLimits>
    history?: HistoryOptions
    logger?: RecordingLogger
    scheduler?: Scheduler
    clock?: Clock
  } = {}
): Hub {
  const defaults = parseConfig({
    servers: [
      { type: 'client', port: 0 },
      { type: 'admin', port: 0 },
    ],
  })
  const clock = options.clock ?? new FakeClock()
  return new Hub({
    clock,
    log: new LogLimiter(options.logger ?? new RecordingLogger(), clock),
    scheduler: options.scheduler ?? new ManualScheduler(),
    limits: { ...defaults.limits, ...options.limits },
    history: options.history ?? defaults.history,
    stats: newLimitStats(),
  })
}

/** The config testNode() starts from: two port-0 servers, plus `extra` top-level keys. */
export function nodeConfig(extra: Record<string, unknown> = {}) {
  return parseConfig({
    servers: [
      { type: 'client', port: 0 },
      { type: 'admin', port: 0 },
    ],
    ...extra,
  })
}

/**
 * A whole node (src/node/node.ts) on fakes: a manual scheduler, a fake clock, a recording
 * logger. `config` adds top-level keys to a config with two port-0 servers.
 */
export function testNode(
  config: Record<string, unknown> = {},
  options: Partial<Omit<NodeOptions, 'config'>> & {
    logger?: RecordingLogger
    clock?: FakeClock
  } = {}
) {
  const clock = options.clock ?? new FakeClock()
  const logger = options.logger ?? new RecordingLogger()
  const scheduler = new ManualScheduler()
  const node = createNode({
    scheduler,
    ...options,
    clock,
    logger,
    config: nodeConfig(config),
  })
  node.state.listening = true
  return { node, tidings: node.tidings, app: node.admin, clock, logger, scheduler }
}
