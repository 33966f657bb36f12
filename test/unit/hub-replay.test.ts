/**
 * Replays served from a shared history (a backplane's, or the primary's for a worker): one
 * outstanding per connection, and no more of it computed than the socket has room for.
 */
import { describe, expect, it } from 'vitest'
import type { SharedHistory } from '../../src/hub/hub.ts'
import { outboundFromText, outboundFromValue } from '../../src/hub/outbound.ts'
import { withinRoom } from '../../src/hub/output-budget.ts'
import type { Outbound } from '../../src/ports.ts'
import { FakeSocket, testNode } from '../helpers/fakes.ts'

/** A shared history whose answers the test gives, one by one. */
class HeldHistory implements SharedHistory {
  readonly asked: { since: number; answer(messages: Outbound[]): void }[] = []
  replay(_connection: unknown, since: number) {
    return new Promise<readonly Outbound[]>((resolve) => {
      this.asked.push({ since, answer: resolve })
    })
  }
}

describe('replay from a shared history', () => {
  it('has one outstanding per connection; asks meanwhile are served as one, after it', async () => {
    const { tidings, scheduler, clock } = testNode()
    const shared = new HeldHistory()
    tidings.hub.useSharedHistory(shared)
    const socket = new FakeSocket()
    const connection = tidings.hub.connect(socket, 'default')
    tidings.hub.subscribe(connection, ['P'])
    const now = clock.now()

    tidings.hub.requestReplay(connection, 1000)
    scheduler.runAll()
    expect(shared.asked.map((ask) => ask.since)).toEqual([now - 1000])
    // Asked again, in later turns, while the first is on its way: nothing more is asked yet.
    for (const age of [2000, 5000, 3000]) {
      tidings.hub.requestReplay(connection, age)
      scheduler.runAll()
    }
    expect(shared.asked).toHaveLength(1)

    shared.asked[0]?.answer([outboundFromValue({ n: 1 })])
    await Promise.resolve()
    expect(socket.frames()).toEqual([{ n: 1 }])
    // Then the asks made meanwhile, once, at the longest age.
    scheduler.runAll()
    expect(shared.asked.map((ask) => ask.since)).toEqual([now - 1000, now - 5000])
    shared.asked[1]?.answer([])
    await Promise.resolve()
    scheduler.runAll()
    expect(shared.asked).toHaveLength(2)
    expect(tidings.hub.stats.replays).toBe(2)
  })
})

describe('withinRoom', () => {
  const messages = [1, 2, 3, 4, 5].map((n) => outboundFromText(`${n}`.repeat(10)))

  it('keeps the messages that fit and the first that does not', () => {
    expect(withinRoom(messages, 25)).toEqual(messages.slice(0, 3))
    expect(withinRoom(messages, 30)).toEqual(messages.slice(0, 4))
    expect(withinRoom(messages, 50)).toEqual(messages)
    expect(withinRoom(messages, 1000)).toEqual(messages)
  })

  it('always keeps one message, and nothing of nothing', () => {
    expect(withinRoom(messages, 0)).toEqual(messages.slice(0, 1))
    expect(withinRoom([], 0)).toEqual([])
  })
})
