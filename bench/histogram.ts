/**
 * A mergeable latency histogram: 10 µs buckets up to 10 s (anything slower lands in the
 * last bucket). Shards send theirs as sparse [bucket, count] pairs; percentiles are taken
 * from the merged counts, never averaged.
 */

const BUCKET_US = 10
const BUCKETS = 1_000_000

export type SparseHistogram = [number, number][]

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS + 1)
  total = 0
  max = 0

  record(micros: number): void {
    const value = Math.max(micros, 0)
    const bucket = Math.min(BUCKETS, Math.floor(value / BUCKET_US))
    this.counts[bucket] = (this.counts[bucket] as number) + 1
    this.total++
    if (value > this.max) this.max = value
  }

  reset(): void {
    this.counts.fill(0)
    this.total = 0
    this.max = 0
  }

  toSparse(): SparseHistogram {
    const out: SparseHistogram = []
    for (let i = 0; i <= BUCKETS; i++) {
      const count = this.counts[i] as number
      if (count > 0) out.push([i, count])
    }
    return out
  }

  merge(sparse: SparseHistogram, max = 0): void {
    for (const [bucket, count] of sparse) {
      this.counts[bucket] = (this.counts[bucket] as number) + count
      this.total += count
    }
    if (max > this.max) this.max = max
  }

  /** The value (µs, bucket upper bound) at or below which `p` percent of samples fall. */
  percentile(p: number): number {
    if (this.total === 0) return Number.NaN
    const rank = Math.max(1, Math.ceil((p / 100) * this.total))
    let seen = 0
    for (let i = 0; i <= BUCKETS; i++) {
      seen += this.counts[i] as number
      if (seen >= rank) return Math.min((i + 1) * BUCKET_US, this.max)
    }
    return this.max
  }
}
