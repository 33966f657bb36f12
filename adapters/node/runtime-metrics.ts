/**
 * Node's own figures for /metrics and the dashboard: event-loop delay (perf_hooks
 * monitorEventLoopDelay), process memory and CPU. The delay quantiles cover the last full
 * window (10 s by default), so every scraper sees the same numbers however often it polls;
 * `_sum` and `_count` accumulate over the process's life, as a summary's must.
 *
 * The monitor records the whole time between its timer's runs, resolution included; the
 * resolution is subtracted so an idle loop reports ~0, not ~10 ms (as fastify's
 * under-pressure does).
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks'
import type { MetricFamily } from '../../src/metrics/exposition.ts'
import type { RuntimeSummary } from '../../src/metrics/stats.ts'

const NS_PER_S = 1e9
const QUANTILES = [0.5, 0.9, 0.99] as const

interface DelayWindow {
  quantiles: number[]
  max: number
  mean: number
}

export interface RuntimeMetricsOptions {
  /** Milliseconds each event-loop delay window lasts. */
  windowMs?: number
  /** Sampling resolution of the delay monitor, ms. */
  resolutionMs?: number
}

export class RuntimeMetrics {
  readonly #histogram: IntervalHistogram
  readonly #timer: NodeJS.Timeout
  #last: DelayWindow | undefined
  readonly #windowSeconds: number
  readonly #resolutionNs: number
  #sumSeconds = 0
  #count = 0

  constructor(options: RuntimeMetricsOptions = {}) {
    const resolutionMs = options.resolutionMs ?? 10
    this.#resolutionNs = resolutionMs * 1e6
    this.#histogram = monitorEventLoopDelay({ resolution: resolutionMs })
    this.#histogram.enable()
    const windowMs = options.windowMs ?? 10_000
    this.#windowSeconds = windowMs / 1000
    this.#timer = setInterval(() => this.#roll(), windowMs)
    this.#timer.unref()
  }

  /** Closes the current window: its figures become the reported ones. */
  #roll(): void {
    const window = this.#read()
    if (window === undefined) return
    this.#last = window
    this.#sumSeconds += window.mean * this.#histogram.count
    this.#count += this.#histogram.count
    this.#histogram.reset()
  }

  #read(): DelayWindow | undefined {
    const h = this.#histogram
    if (h.count === 0) return undefined
    const seconds = (ns: number): number => Math.max(0, ns - this.#resolutionNs) / NS_PER_S
    return {
      quantiles: QUANTILES.map((q) => seconds(h.percentile(q * 100))),
      max: seconds(h.max),
      mean: seconds(h.mean),
    }
  }

  /** The last full window, or the current one before the first has closed. */
  #window(): DelayWindow | undefined {
    return this.#last ?? this.#read()
  }

  summary(): RuntimeSummary {
    const memory = process.memoryUsage()
    const window = this.#window()
    return {
      ...(window
        ? {
            eventLoopDelayP99Seconds: window.quantiles[2] as number,
            eventLoopDelayMaxSeconds: window.max,
          }
        : {}),
      residentMemoryBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
    }
  }

  families(): MetricFamily[] {
    const memory = process.memoryUsage()
    const cpu = process.cpuUsage()
    const window = this.#window()
    return [
      {
        name: 'tidings_event_loop_delay_seconds',
        type: 'summary',
        help: `Event-loop delay: quantiles over the last ${this.#windowSeconds} s window; sum and count since start.`,
        samples: [
          ...(window
            ? QUANTILES.map((q, i) => ({
                labels: { quantile: String(q) },
                value: window.quantiles[i] as number,
              }))
            : []),
          { suffix: '_sum', value: this.#sumSeconds },
          { suffix: '_count', value: this.#count },
        ],
      },
      {
        name: 'tidings_event_loop_delay_max_seconds',
        type: 'gauge',
        help: `Longest event-loop delay seen in the last ${this.#windowSeconds} s window.`,
        samples: window ? [{ value: window.max }] : [],
      },
      {
        name: 'tidings_process_resident_memory_bytes',
        type: 'gauge',
        help: 'Resident set size of the process.',
        samples: [{ value: memory.rss }],
      },
      {
        name: 'tidings_process_heap_used_bytes',
        type: 'gauge',
        help: 'V8 heap in use.',
        samples: [{ value: memory.heapUsed }],
      },
      {
        name: 'tidings_process_heap_total_bytes',
        type: 'gauge',
        help: 'V8 heap allocated.',
        samples: [{ value: memory.heapTotal }],
      },
      {
        name: 'tidings_process_external_memory_bytes',
        type: 'gauge',
        help: 'Memory of C++ objects bound to JavaScript (buffers included).',
        samples: [{ value: memory.external }],
      },
      {
        name: 'tidings_process_cpu_seconds_total',
        type: 'counter',
        help: 'CPU time spent by the process, user and system.',
        samples: [
          { labels: { mode: 'user' }, value: cpu.user / 1e6 },
          { labels: { mode: 'system' }, value: cpu.system / 1e6 },
        ],
      },
    ]
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#histogram.disable()
  }
}
