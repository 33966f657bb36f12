/**
 * The client and admin contract every adapter must meet, written once against real sockets.
 * Call `describeContract(name, factory)` from an adapter's test file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HANDSHAKE_MS } from '../helpers/patience.ts'
import { connect, eventually, type TestClient } from '../helpers/ws-client.ts'
import { post, status, type Target, type TargetFactory } from './target.ts'

const FINGERPRINT = /^[23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ]{16}$/
let counter = 0
/** A subscriber id no other test uses. */
const uid = (label = 'X'): string => `PHID-${label}-${process.pid}-${++counter}`

/** A counter of /stats.json `limited`, as the node (shard 0 on Workers) reports it. */
async function limited(target: Target, name: string): Promise<number> {
  const response = await fetch(`${target.adminUrl}/stats.json`, {
    headers: target.adminHeaders,
    signal: AbortSignal.timeout(5000),
  })
  return ((await response.json()) as { limited: Record<string, number> }).limited[name] ?? -1
}

async function subscribed(target: Target, ids: string[], path = '/'): Promise<TestClient> {
  const client = await connect(`${target.clientUrl}${path}`)
  client.send({ command: 'subscribe', data: ids })
  await client.ping() // the subscribe was handled before the pong came back
  return client
}

export function describeContract(name: string, factory: TargetFactory): void {
  describe(`${name}: client and admin contract`, { timeout: 20_000 }, () => {
    let target: Target
    beforeAll(async () => {
      target = await factory({
        limits: { bodyBytes: 4096, frameBytes: 1024, subscriptionsPerConnection: 50 },
      })
    })
    afterAll(async () => {
      await target?.close()
    })

    describe('client port', () => {
      it('answers plain HTTP on any path with 501 "Use Websockets"', async () => {
        const base = target.clientUrl.replace(/^ws/, 'http')
        for (const path of ['/', '/anything/~x/', '/status/']) {
          const response = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(3000) })
          expect(response.status).toBe(501)
          expect(await response.text()).toBe('HTTP/501 Use Websockets\n')
        }
      })

      it('answers ping with pong', async () => {
        const client = await connect(`${target.clientUrl}/`)
        client.send({ command: 'ping', data: null })
        expect(await client.next()).toEqual({ type: 'pong' })
        await client.close()
      })

      it('delivers a posted message with touched stamped last, keys in order', async () => {
        const id = uid()
        const client = await subscribed(target, [id])
        const reply = await post(target, {
          key: '42',
          type: 'notification',
          subscribers: [id],
          uniqueID: 'u1',
        })
        expect(reply.status).toBe(200)
        const fingerprint = (reply.json as { fingerprint: string }).fingerprint
        expect(fingerprint).toMatch(FINGERPRINT)
        const frame = await client.next()
        expect(JSON.stringify(frame)).toBe(
          JSON.stringify({
            key: '42',
            type: 'notification',
            subscribers: [id],
            uniqueID: 'u1',
            touched: [fingerprint],
          })
        )
        await client.close()
      })

      it('sends a socket one copy however many of its ids match, and nothing to others', async () => {
        const [a, b, c] = [uid(), uid(), uid()]
        const both = await subscribed(target, [a, b])
        const other = await subscribed(target, [c])
        await post(target, { key: 'k', subscribers: [a, b] })
        expect((await both.next()).key).toBe('k')
        await both.silence()
        await other.silence()
        await Promise.all([both.close(), other.close()])
      })

      it('keeps non-ASCII text byte-for-byte', async () => {
        const id = uid()
        const client = await subscribed(target, [id])
        const text = 'Grüße, 世界 🚀 \u2028'
        await post(target, { text, subscribers: [id] })
        expect((await client.next()).text).toBe(text)
        await client.close()
      })

      it('stops delivering after unsubscribe', async () => {
        const id = uid()
        const client = await subscribed(target, [id])
        client.send({ command: 'unsubscribe', data: [id] })
        await client.ping()
        await post(target, { subscribers: [id] })
        await client.silence()
        await client.close()
      })

      it('derives the instance from the ~name path segment, as Aphlict does', async () => {
        const cases: [string, string][] = [
          ['/~alpha/', 'alpha'],
          ['/ws/~alpha', 'alpha'],
          ['/~a/b/', 'ab'],
          ['/~a~b/', 'a'],
          ['/~beta/?x=~gamma', 'beta'],
          ['/x?instance=alpha', 'default'],
          ['/~/', 'default'],
        ]
        for (const [path, instance] of cases) {
          const id = uid()
          const client = await subscribed(target, [id], path)
          await post(target, { path, subscribers: [id] }, `?instance=${instance}`)
          expect((await client.next()).path).toBe(path)
          await client.close()
        }
      })

      it('isolates instances: a message for one never reaches another', async () => {
        const id = uid()
        const alpha = await subscribed(target, [id], '/~iso-alpha/')
        const beta = await subscribed(target, [id], '/~iso-beta/')
        await post(target, { n: 1, subscribers: [id] }, '?instance=iso-alpha')
        expect((await alpha.next()).n).toBe(1)
        await beta.silence()
        await Promise.all([alpha.close(), beta.close()])
      })

      it('replays recent history of its own instance and subscriptions only', async () => {
        const [mine, theirs] = [uid(), uid()]
        await post(target, { n: 'mine-1', subscribers: [mine] }, '?instance=replay-a')
        await post(target, { n: 'theirs', subscribers: [theirs] }, '?instance=replay-a')
        await post(target, { n: 'other-instance', subscribers: [mine] }, '?instance=replay-b')
        await post(target, { n: 'mine-2', subscribers: [mine, theirs] }, '?instance=replay-a')
        const client = await subscribed(target, [mine], '/~replay-a/')
        client.send({ command: 'replay', data: { age: 60_000 } })
        expect((await client.next()).n).toBe('mine-1')
        expect((await client.next()).n).toBe('mine-2')
        await client.silence()
        await client.close()
      })

      it('ignores malformed frames and keeps the connection working', async () => {
        const id = uid()
        const client = await connect(`${target.clientUrl}/`)
        const garbage = [
          'null',
          'not json',
          '[]',
          '42',
          '{"command":"subscribe"}',
          '{"command":"subscribe","data":null}',
          '{"command":"unsubscribe","data":{"a":1}}',
          '{"command":"replay","data":null}',
          '{"command":"replay"}',
          '{"command":"replay","data":{"age":"soon"}}',
          '{"command":"subscribe","data":[{"x":1}]}',
          '{"command":"nope"}',
          '{}',
        ]
        for (const frame of garbage) client.sendRaw(frame)
        await client.ping()
        client.send({ command: 'subscribe', data: [id] })
        await client.ping()
        await post(target, { ok: true, subscribers: [id] })
        expect((await client.next()).ok).toBe(true)
        await client.close()
      })

      it('does not subscribe per character when data is a string', async () => {
        const client = await connect(`${target.clientUrl}/`)
        client.send({ command: 'subscribe', data: 'PQ' })
        await client.ping()
        await post(target, { subscribers: ['P', 'Q'] })
        await client.silence()
        await client.close()
      })

      it('closes a socket that sends a frame over the size limit with 1009', async () => {
        const client = await connect(`${target.clientUrl}/`)
        client.sendRaw(JSON.stringify({ command: 'subscribe', data: ['x'.repeat(2000)] }))
        expect((await client.closed).code).toBe(1009)
      })

      it('closes a socket that goes past the subscription limit with 1008', async () => {
        const client = await connect(`${target.clientUrl}/`)
        client.send({ command: 'subscribe', data: Array.from({ length: 30 }, () => uid()) })
        await client.ping()
        client.send({ command: 'subscribe', data: Array.from({ length: 30 }, () => uid()) })
        const closed = await client.closed
        expect(closed.code).toBe(1008)
        expect(closed.reason).toMatch(/subscription/)
      })

      it('closes a socket that subscribes to an id over limits.idBytes with 1008 id_too_long, and counts it', async () => {
        const before = await limited(target, 'idBytes')
        const client = await connect(`${target.clientUrl}/`)
        client.send({ command: 'subscribe', data: ['x'.repeat(300)] })
        expect(await client.closed).toEqual({ code: 1008, reason: 'id_too_long' })
        expect(await limited(target, 'idBytes')).toBe(before + 1)
      })

      it('counts limit closes in /stats.json and /metrics', async () => {
        const before = await limited(target, 'subscriptionsPerConnection')
        const client = await connect(`${target.clientUrl}/`)
        client.send({ command: 'subscribe', data: Array.from({ length: 51 }, () => uid()) })
        expect((await client.closed).reason).toBe('subscription_limit')
        expect(await limited(target, 'subscriptionsPerConnection')).toBe(before + 1)
        const metrics = await (
          await fetch(`${target.adminUrl}/metrics`, { headers: target.adminHeaders })
        ).text()
        expect(metrics).toContain(
          `tidings_limit_refusals_total{limit="subscriptions_per_connection"} ${before + 1}\n`
        )
      })

      it('removes a closed socket from the instance', async () => {
        const instance = 'leave-check'
        const client = await subscribed(target, [uid()], `/~${instance}/`)
        expect((await status(target, instance))['clients.active']).toBe(1)
        await client.close()
        await eventually(
          () => status(target, instance),
          (s) => s['clients.active'] === 0
        )
        expect((await status(target, instance))['clients.total']).toBe(1)
      })
    })

    describe('admin port', () => {
      it('answers /status/ with the Aphlict keys in order', async () => {
        const instance = 'status-keys'
        const id = uid()
        const client = await subscribed(target, [id], `/~${instance}/`)
        await post(target, { subscribers: [id] }, `?instance=${instance}`)
        await client.next()
        const body = await status(target, instance)
        expect(Object.keys(body).slice(0, 9)).toEqual([
          'instance',
          'uptime',
          'clients.active',
          'clients.total',
          'messages.in',
          'messages.out',
          'version',
          'history.size',
          'history.age',
        ])
        expect(body).toMatchObject({
          instance,
          'clients.active': 1,
          'clients.total': 1,
          'messages.in': 1,
          'messages.out': 1,
          version: 7,
          'history.size': 1,
        })
        expect(body.uptime).toEqual(expect.any(Number))
        expect(body['history.age']).toEqual(expect.any(Number))
        await client.close()
      })

      it('reports an unknown instance as empty without creating it', async () => {
        const body = await status(target, 'never-seen')
        expect(body).toMatchObject({
          instance: 'never-seen',
          'clients.active': 0,
          'clients.total': 0,
          'messages.in': 0,
          'history.size': 0,
          'history.age': null,
        })
      })

      it('answers 405 to other methods on / and 404 to other paths', async () => {
        const get = await fetch(`${target.adminUrl}/`, { headers: target.adminHeaders })
        expect(get.status).toBe(405)
        const put = await fetch(`${target.adminUrl}/`, {
          method: 'PUT',
          headers: target.adminHeaders,
        })
        expect(put.status).toBe(405)
        for (const path of ['/status', '/nope', '/status/x']) {
          const response = await fetch(`${target.adminUrl}${path}`, {
            headers: target.adminHeaders,
          })
          expect(response.status).toBe(404)
        }
      })

      it('rejects bodies that are not a message with 400 and a coded error, counting nothing', async () => {
        const instance = 'bad-bodies'
        const cases: [string, string][] = [
          ['', 'body_not_json'],
          ['not json', 'body_not_json'],
          ['null', 'body_not_object'],
          ['[1]', 'body_not_object'],
          ['"s"', 'body_not_object'],
          ['{}', 'subscribers_invalid'],
          ['{"subscribers":"P"}', 'subscribers_invalid'],
          ['{"subscribers":[null]}', 'subscribers_invalid'],
          ['{"subscribers":["P"],"touched":"abc"}', 'touched_invalid'],
          ['{"subscribers":["P"],"touched":{}}', 'touched_invalid'],
          ['{"subscribers":["P"],"touched":[1]}', 'touched_invalid'],
        ]
        for (const [body, code] of cases) {
          const reply = await post(target, body, `?instance=${instance}`)
          expect(reply.status, body).toBe(400)
          expect((reply.json as { error: { code: string; message: string } }).error).toMatchObject({
            code,
            message: expect.any(String),
          })
        }
        const after = await status(target, instance)
        expect(after['messages.in']).toBe(0)
        expect(after['history.size']).toBe(0)
      })

      it('refuses a body nested too deep, or an unusable uniqueID, with 400 and a coded error', async () => {
        const deep = `{"subscribers":["P"],"x":${'['.repeat(100)}${']'.repeat(100)}}`
        const cases: [string, string][] = [
          [deep, 'body_too_deep'],
          ['{"subscribers":["P"],"uniqueID":""}', 'unique_id_invalid'],
          ['{"subscribers":["P"],"uniqueID":{"a":1}}', 'unique_id_invalid'],
        ]
        for (const [body, code] of cases) {
          const reply = await post(target, body, '?instance=bad-bodies-2')
          expect(reply.status, body).toBe(400)
          expect((reply.json as { error: { code: string } }).error.code).toBe(code)
        }
        expect((await status(target, 'bad-bodies-2'))['messages.in']).toBe(0)
      })

      it('gives a message without a uniqueID a random one, the same on every socket', async () => {
        const id = uid()
        const [a, b] = [await subscribed(target, [id]), await subscribed(target, [id])]
        await post(target, { n: 1, subscribers: [id] })
        const [fromA, fromB] = [await a.next(), await b.next()]
        expect(fromA.uniqueID).toMatch(/^[a-z2-7]{32}$/)
        expect(fromB.uniqueID).toBe(fromA.uniqueID)
        await Promise.all([a.close(), b.close()])
      })

      it("adds the node's keys after Aphlict's in /status/", async () => {
        const body = await status(target, 'status-extras')
        expect(body.fingerprint).toMatch(FINGERPRINT)
        expect(body['cluster.duplicates']).toEqual(expect.any(Number))
        expect(body['cluster.dedupEvicted']).toEqual(expect.any(Number))
      })

      it('refuses a body over the limit with 413', async () => {
        const reply = await post(target, { subscribers: ['x'], pad: 'x'.repeat(5000) })
        expect(reply.status).toBe(413)
        expect((reply.json as { error: { code: string } }).error.code).toBe('body_too_large')
      })

      it('answers the receipt but does not deliver a message that already carries its fingerprint', async () => {
        const id = uid()
        const client = await subscribed(target, [id])
        const first = await post(target, { n: 1, subscribers: [id] })
        const fingerprint = (first.json as { fingerprint: string }).fingerprint
        await client.next()
        const again = await post(target, {
          n: 2,
          subscribers: [id],
          touched: ['someone', fingerprint],
        })
        expect(again.status).toBe(200)
        expect(again.json).toEqual({ fingerprint })
        await client.silence()
        await client.close()
      })

      it('refuses an unusable instance name with 400', async () => {
        const reply = await post(
          target,
          { subscribers: ['x'] },
          `?instance=${encodeURIComponent('bad name\n')}`
        )
        expect(reply.status).toBe(400)
        expect((reply.json as { error: { code: string } }).error.code).toBe('instance_invalid')
      })
    })
  })

  describe(`${name}: browser origins`, { timeout: 20_000 }, () => {
    let target: Target
    beforeAll(async () => {
      target = await factory({ origins: ['https://phorge.example.org'] })
    })
    afterAll(async () => {
      await target?.close()
    })

    it('refuses an upgrade from another origin with 403 origin_not_allowed, and counts it', async () => {
      const before = await limited(target, 'origin')
      const refused = await connect(`${target.clientUrl}/`, HANDSHAKE_MS, {
        Origin: 'https://evil.example',
      }).then(
        () => 'accepted',
        (error: Error) => error.message
      )
      expect(refused).toMatch(/403/)
      expect(await limited(target, 'origin')).toBe(before + 1)
      const allowed = await connect(`${target.clientUrl}/`, HANDSHAKE_MS, {
        Origin: 'https://phorge.example.org',
      })
      await allowed.ping()
      await allowed.close()
    })
  })
}
