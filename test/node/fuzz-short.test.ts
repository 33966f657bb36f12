/**
 * The short, seeded version of `npm run fuzz`, so CI runs it: thousands of random and
 * mutated frames and requests at a real `tidings run` process on 127.0.0.1 (one process, then
 * a primary with two workers). It fails on a
 * crash, a connection that stops answering ping, a lost delivery, a counter mismatch or
 * RSS that does not come back.
 */
import { describe, expect, it } from 'vitest'
import { fuzz, summary } from '../../scripts/fuzz.ts'

describe('fuzz (short)', () => {
  // With processes: 2 every input goes through the primary to a worker (sockets, replays,
  // status of instances whose sockets only workers hold).
  it.each([1, 2])(
    'survives 8,000 frames and 1,500 requests with counters, delivery and memory intact (processes: %i)',
    {
      timeout: 90_000,
    },
    async (processes) => {
      const report = await fuzz({
        frames: 8000,
        posts: 1500,
        connections: 8,
        seed: 8,
        timeLimit: 75,
        processes,
        log: () => {},
      })
      expect(report.failures, summary(report)).toEqual([])
      expect(report.ok).toBe(true)
      expect(report.frames.sent).toBe(8000)
      expect(report.posts.sent + report.posts.raw).toBe(1500)
      // The run did reach the server: messages were accepted and each limit fired at least once.
      expect(Object.values(report.posts.accepted).reduce((a, b) => a + b, 0)).toBeGreaterThan(500)
      expect(report.posts.statuses['413']).toBeGreaterThan(0)
      expect(report.frames.expectedCloses['1009']).toBeGreaterThan(0)
      // Hostile upgrades: answered or closed, and nothing held once the clients left.
      expect(report.frames.upgrades).toBeGreaterThan(100)
      expect(report.frames.upgradesCut).toBeGreaterThan(0)
      expect(report.frames.upgradesHanging).toBe(0)
    }
  )
})
