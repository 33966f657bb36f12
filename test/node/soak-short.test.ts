/**
 * The short, seeded version of `npm run soak`, so CI runs it: 500 clients in two child
 * processes churning and resubscribing under a steady publisher for 30 s against a real
 * `tidings run` on 127.0.0.1, with a trickle of hostile upgrades alongside. It fails on any
 * owed delivery that does not arrive (or arrives twice), a client closed by the server, a
 * failed POST, an upgrade left hanging or a connection still held once the clients left, or
 * live-heap / RSS growth after warm-up. History and dedup memory are shortened so they fill up within the warm-up.
 */
import { describe, expect, it } from 'vitest'
import { soak, summary } from '../../scripts/soak.ts'

describe('soak (short)', () => {
  it('delivers everything owed to connected clients under churn, without memory growth', {
    timeout: 90_000,
  }, async () => {
    const report = await soak({
      connections: 500,
      minutes: 0.5,
      warmup: 10,
      shards: 2,
      rate: 20,
      churn: 0.02,
      resubscribe: 0.02,
      sample: 2,
      growth: 0.1,
      seed: 5,
      config: { history: { age: 5000 }, relay: { maxAge: 1000, dedupAge: 5000 } },
      log: () => {},
    })
    expect(report.failures, summary(report)).toEqual([])
    expect(report.ok).toBe(true)
    // The check had teeth: deliveries were owed, clients churned and resubscribed.
    expect(report.fleet.expected).toBeGreaterThan(5000)
    expect(report.fleet.churned).toBeGreaterThan(100)
    expect(report.fleet.resubscribed).toBeGreaterThan(100)
    expect(report.growth.judged).toBeGreaterThanOrEqual(8)
    // Hostile upgrades ran alongside, some cut short; none was left hanging.
    expect(report.upgrades.sent).toBeGreaterThan(50)
    expect(report.upgrades.cut).toBeGreaterThan(0)
    expect(report.upgrades.hanging).toBe(0)
  })
})
