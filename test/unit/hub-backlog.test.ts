import { describe, expect, it } from 'vitest'
import { outboundFromValue } from '../../src/hub/outbound.ts'
import { FakeSocket, testNode } from '../helpers/fakes.ts'

function setup(limits: Record<string, number>) {
  const { scheduler, tidings, app } = testNode({ limits })
  const sockets = Array.from({ length: 10 }, () => new FakeSocket())
  for (const socket of sockets) tidings.hub.subscribe(tidings.hub.connect(socket, 'default'), ['P'])
  return { scheduler, tidings, sockets, app }
}

describe('Hub backlog', () => {
  it('counts queued deliveries as fan-outs are queued, merged and served', () => {
    const { scheduler, tidings, sockets } = setup({ fanoutSlice: 3 })
    for (let n = 0; n < 5; n++) tidings.hub.publish('default', ['P'], outboundFromValue({ n }))
    expect(tidings.hub.backlog).toBe(50)
    let served = 0
    while (scheduler.tasks.length > 0) {
      scheduler.tasks.shift()?.()
      served = sockets.reduce((sum, socket) => sum + socket.sent.length, 0)
      expect(tidings.hub.backlog).toBe(50 - served)
    }
    expect(tidings.hub.backlog).toBe(0)
    expect(served).toBe(50)
  })
})

describe('admin POST under a full backlog', () => {
  it('answers 503 overloaded with Retry-After, counts it, and accepts again once the backlog drains', async () => {
    const { scheduler, tidings, app } = setup({ fanoutSlice: 2, fanoutBacklog: 15 })
    const post = () => app.request('/', { method: 'POST', body: '{"subscribers":["P"]}' })
    expect((await post()).status).toBe(200) // 10 queued
    expect((await post()).status).toBe(200) // 20 queued: over the bound now
    const refused = await post()
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('1')
    expect(await refused.json()).toMatchObject({ error: { code: 'overloaded' } })
    expect(tidings.limited.fanoutBacklog).toBe(1)
    expect(tidings.rejected.badBodies).toBe(0)
    expect(tidings.status('default')['messages.in']).toBe(2)
    scheduler.runAll()
    expect(tidings.hub.backlog).toBe(0)
    expect((await post()).status).toBe(200)
  })
})
