/**
 * A fixed-bucket histogram (Prometheus semantics: cumulative `le` buckets, `_sum`, `_count`),
 * cheap enough to observe on every relay. Runtime-free.
 */
import type { Labels, Sample } from './exposition.ts'

/** Upper bounds in seconds for network round trips on a LAN or between regions. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]

export interface HistogramSnapshot {
  /** Upper bounds, ascending; `+Inf` is implied. */
  readonly bounds: readonly number[]
  /** Per-bucket counts (not cumulative), one more than `bounds` (the last is `+Inf`). */
  readonly counts: readonly number[]
  readonly sum: number
  readonly count: number
}

export class Histogram {
  readonly #bounds: readonly number[]
  readonly #counts: number[]
  #sum = 0
  #count = 0

  constructor(bounds: readonly number[] = LATENCY_BUCKETS_SECONDS) {
    for (let i = 1; i < bounds.length; i++) {
      if ((bounds[i] as number) <= (bounds[i - 1] as number)) {
        throw new Error('histogram bounds must be strictly ascending')
      }
    }
    this.#bounds = bounds
    this.#counts = new Array<number>(bounds.length + 1).fill(0)
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return
    let i = 0
    while (i < this.#bounds.length && value > (this.#bounds[i] as number)) i++
    this.#counts[i] = (this.#counts[i] as number) + 1
    this.#sum += value
    this.#count++
  }

  snapshot(): HistogramSnapshot {
    return { bounds: this.#bounds, counts: [...this.#counts], sum: this.#sum, count: this.#count }
  }
}

/** The `_bucket`/`_sum`/`_count` samples of one histogram series. */
export function histogramSamples(snapshot: HistogramSnapshot, labels: Labels = {}): Sample[] {
  const samples: Sample[] = []
  let cumulative = 0
  snapshot.bounds.forEach((bound, i) => {
    cumulative += snapshot.counts[i] ?? 0
    samples.push({ suffix: '_bucket', labels: { ...labels, le: String(bound) }, value: cumulative })
  })
  samples.push({ suffix: '_bucket', labels: { ...labels, le: '+Inf' }, value: snapshot.count })
  samples.push({ suffix: '_sum', labels, value: snapshot.sum })
  samples.push({ suffix: '_count', labels, value: snapshot.count })
  return samples
}

/** Estimates the q-quantile (0..1) by linear interpolation inside its bucket, as PromQL does. */
export function histogramQuantile(snapshot: HistogramSnapshot, q: number): number | null {
  if (snapshot.count === 0) return null
  const rank = q * snapshot.count
  let cumulative = 0
  for (let i = 0; i < snapshot.counts.length; i++) {
    const inBucket = snapshot.counts[i] ?? 0
    if (cumulative + inBucket >= rank && inBucket > 0) {
      const lower = i === 0 ? 0 : (snapshot.bounds[i - 1] as number)
      const upper = snapshot.bounds[i]
      if (upper === undefined) return lower
      return lower + ((upper - lower) * (rank - cumulative)) / inBucket
    }
    cumulative += inBucket
  }
  return snapshot.bounds[snapshot.bounds.length - 1] ?? null
}
