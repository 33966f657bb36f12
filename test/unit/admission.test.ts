/** Admission in-process: address keys, X-Forwarded-For, leases and their counts, config messages, warnings. */
import { describe, expect, it } from 'vitest'
import { adminExposureWarnings } from '../../adapters/node/exposure.ts'
import { Admission, type Lease, targetPath } from '../../src/client/admission.ts'
import { parseConfig } from '../../src/config/parse.ts'
import type { Limits } from '../../src/config/schema.ts'
import { RequestError } from '../../src/errors.ts'
import { newLimitStats } from '../../src/limit-stats.ts'
import { LogLimiter } from '../../src/log-limiter.ts'
import { addressKey, CidrList, isLoopbackAddress, parseIp } from '../../src/net/address.ts'
import { FakeClock, RecordingLogger } from '../helpers/fakes.ts'
import { loopbackConfig } from '../helpers/node-target.ts'

function admission(
  limits: Partial<Limits> = {},
  options: { trustedProxies?: string[]; origins?: string[]; ceiling?: number } = {}
) {
  const clock = new FakeClock(0)
  const logger = new RecordingLogger()
  const stats = newLimitStats()
  const names = new Set<string>(['default'])
  const defaults = parseConfig(loopbackConfig()).limits
  const a = new Admission({
    limits: { ...defaults, ...limits },
    origins: options.origins,
    trustedProxies: options.trustedProxies ?? [],
    stats,
    log: new LogLimiter(logger, clock),
    clock,
    instances: {
      has: (name) => names.has(name),
      get count() {
        return names.size
      },
    },
    ceiling: options.ceiling,
  })
  const lease = (peer: string): Lease => {
    const taken = a.accept(peer, {})
    if (taken instanceof RequestError) throw taken
    return taken
  }
  return { a, clock, logger, stats, names, lease }
}

describe('client addresses', () => {
  it('keys IPv4 as is, IPv4-mapped IPv6 as IPv4 and IPv6 by its /64', () => {
    expect(addressKey('203.0.113.9')).toBe('203.0.113.9')
    expect(addressKey('::ffff:203.0.113.9')).toBe('203.0.113.9')
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:DB8::1')).toBe('2001:db8:0:0::/64')
    expect(addressKey('::1')).toBe('0:0:0:0::/64')
    expect(addressKey('fe80::1:2:3:4%eth0')).toBe('fe80:0:0:0::/64')
    expect(addressKey('not an address')).toBe('not an address')
  })

  it('parses what an address may look like and nothing else', () => {
    for (const good of [
      '0.0.0.0',
      '255.255.255.255',
      '::',
      '::1',
      '1::',
      '1:2:3:4:5:6:7:8',
      '::ffff:1.2.3.4',
      '64:ff9b::192.0.2.1',
    ]) {
      expect(parseIp(good), good).toBeDefined()
    }
    for (const bad of [
      '',
      '1.2.3',
      '256.1.1.1',
      '01.2.3.4',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      ':::',
      'g::1',
      '1.2.3.4.5',
      '[::1]',
    ]) {
      expect(parseIp(bad), bad).toBeUndefined()
    }
  })

  it('matches CIDR ranges by prefix, per family', () => {
    const list = new CidrList(['10.0.0.0/8', '192.168.1.128/25', '2001:db8::/32', '127.0.0.1'])
    expect(list.has('10.255.0.1')).toBe(true)
    expect(list.has('11.0.0.1')).toBe(false)
    expect(list.has('192.168.1.200')).toBe(true)
    expect(list.has('192.168.1.100')).toBe(false)
    expect(list.has('::ffff:10.1.1.1')).toBe(true)
    expect(list.has('2001:db8:ffff::1')).toBe(true)
    expect(list.has('2001:db9::1')).toBe(false)
    expect(list.has('127.0.0.1')).toBe(true)
    expect(list.has('127.0.0.2')).toBe(false)
    expect(list.has('garbage')).toBe(false)
    expect(isLoopbackAddress('127.9.9.9')).toBe(true)
    expect(isLoopbackAddress('::ffff:127.0.0.1')).toBe(true)
    expect(isLoopbackAddress('::1')).toBe(true)
    expect(isLoopbackAddress('10.0.0.1')).toBe(false)
  })

  it('ignores X-Forwarded-For from an untrusted peer', () => {
    const { a } = admission()
    expect(a.clientAddress('198.51.100.1', '203.0.113.5')).toBe('198.51.100.1')
  })

  it('takes the rightmost untrusted X-Forwarded-For hop from a trusted proxy', () => {
    const { a } = admission({}, { trustedProxies: ['10.0.0.0/8', '127.0.0.1', '2001:db8::/32'] })
    const from = (peer: string, xff?: string) => a.clientAddress(peer, xff)
    expect(from('127.0.0.1', '203.0.113.5')).toBe('203.0.113.5')
    expect(from('::ffff:127.0.0.1', '203.0.113.5')).toBe('203.0.113.5')
    // Chained proxies: skip the trusted hops from the right.
    expect(from('10.1.1.1', '198.51.100.9, 203.0.113.5, 10.2.2.2')).toBe('203.0.113.5')
    expect(from('2001:db8::1', '2001:db8::2, 203.0.113.5')).toBe('203.0.113.5')
    // No header, or only trusted hops: the last trusted address.
    expect(from('10.1.1.1')).toBe('10.1.1.1')
    expect(from('10.1.1.1', '10.3.3.3')).toBe('10.3.3.3')
    // Garbage stops the walk at the last address a trusted proxy vouched for.
    expect(from('10.1.1.1', '203.0.113.5, nonsense')).toBe('10.1.1.1')
    expect(from('10.1.1.1', 'nonsense, 203.0.113.5')).toBe('203.0.113.5')
  })
})

describe('Admission', () => {
  const upgrade = { target: '/' }

  it('finds the path of any request target without throwing', () => {
    expect(targetPath('/~x/?instance=x')).toBe('/~x/')
    expect(targetPath('//[/')).toBe('//[/')
    expect(targetPath('http://h:1/~a/b#c')).toBe('/~a/b')
    expect(targetPath('https://h')).toBe('/')
    expect(targetPath('')).toBe('/')
  })

  it('counts connections per client address from accept, upgraded or not, until released once', () => {
    const { a, lease } = admission({ connectionsPerIp: 2 })
    const first = lease('203.0.113.1')
    expect(a.admit(first, upgrade, false)).toBe('default')
    lease('203.0.113.1') // still upgrading: counted all the same
    const third = a.accept('203.0.113.1', {}) as RequestError
    expect([third.status, third.code]).toEqual([429, 'too_many_connections'])
    expect(a.accept('203.0.113.2', {})).not.toBeInstanceOf(RequestError)
    expect(a.openFrom('203.0.113.1')).toBe(2)
    a.release(first)
    expect(a.openFrom('203.0.113.1')).toBe(1)
    a.release(first) // a second close changes nothing
    expect(a.openFrom('203.0.113.1')).toBe(1)
  })

  it('counts clients behind a trusted proxy by X-Forwarded-For, from their upgrade', () => {
    const { a, lease } = admission({ connectionsPerIp: 1 }, { trustedProxies: ['127.0.0.1'] })
    const via = { target: '/', forwardedFor: '203.0.113.7' }
    expect(a.admit(lease('127.0.0.1'), via, false)).toBe('default')
    const refused = a.admit(lease('127.0.0.1'), via, false) as RequestError
    expect(refused.code).toBe('too_many_connections')
    expect(a.admit(lease('127.0.0.1'), { ...via, forwardedFor: '203.0.113.8' }, false)).toBe(
      'default'
    )
    expect(a.openFrom('203.0.113.7')).toBe(1)
    expect(a.openFrom('127.0.0.1')).toBe(0)
  })

  it('limits upgrades in progress per address, exempts trusted proxies, and frees a slot on upgrade', () => {
    const { a, stats } = admission({ handshakesPerIp: 2 }, { trustedProxies: ['10.0.0.1'] })
    const one = a.accept('198.51.100.7', {}) as Lease
    a.accept('198.51.100.7', {})
    const third = a.accept('198.51.100.7', {})
    expect((third as RequestError).code).toBe('too_many_handshakes')
    expect((third as RequestError).status).toBe(429)
    expect(stats.handshakesPerIp).toBe(1)
    for (let i = 0; i < 10; i++) expect(a.accept('10.0.0.1', {})).not.toBeInstanceOf(RequestError)
    expect(a.admit(one, upgrade, false)).toBe('default')
    expect(a.accept('198.51.100.7', {})).not.toBeInstanceOf(RequestError)
  })

  it('closes handshakes past the deadline and releases them', () => {
    const { a, clock, stats } = admission({ handshakeTimeout: 1000, handshakesPerIp: 1 })
    const slow = a.accept('198.51.100.8', 'slow') as Lease
    clock.advance(500)
    const quick = a.accept('198.51.100.9', 'quick') as Lease
    expect(a.admit(quick, upgrade, false)).toBe('default')
    clock.advance(600)
    const expired: unknown[] = []
    a.expire((lease) => expired.push(lease.handle))
    expect(expired).toEqual(['slow'])
    expect(stats.handshakeTimeout).toBe(1)
    // The address may try again at once; the close that follows releases the lease.
    expect(a.accept('198.51.100.8', {})).not.toBeInstanceOf(RequestError)
    a.release(slow)
    expect(a.held).toBe(2)
    expect(a.handshaking).toBe(1)
  })

  it('refuses connections at the ceiling with 503 at_capacity, and says so', () => {
    const { a, lease, logger, stats } = admission({}, { ceiling: 2 })
    const first = lease('198.51.100.1')
    lease('198.51.100.2')
    expect(a.atCapacity).toBe(true)
    const refused = a.accept('198.51.100.3', {}) as RequestError
    expect([refused.status, refused.code]).toEqual([503, 'at_capacity'])
    a.accept('198.51.100.3', {})
    expect(stats.connections).toBe(2)
    expect(logger.lines).toHaveLength(1)
    expect(logger.lines[0]).toMatch(/holding 2, the ceiling .* is 2/)
    a.release(first)
    expect(a.atCapacity).toBe(false)
    // limits.connections, when set, wins over the runtime's ceiling.
    const capped = admission({ connections: 1 }, { ceiling: 100 })
    capped.lease('198.51.100.1')
    expect(capped.a.accept('198.51.100.2', {})).toBeInstanceOf(RequestError)
  })

  it('refuses new instances past limits.instances, not existing ones', () => {
    const { a, lease, stats } = admission({ instances: 1 })
    expect(a.admit(lease('198.51.100.1'), { target: '/~default/' }, false)).toBe('default')
    const refused = a.admit(lease('198.51.100.1'), { target: '/~other/' }, false) as RequestError
    expect([refused.status, refused.code]).toEqual([503, 'too_many_instances'])
    expect(stats.instances).toBe(1)
  })

  it('refuses while shutting down, a bad instance name and a foreign origin', () => {
    const { a, lease, stats } = admission({}, { origins: ['https://phorge.example.org'] })
    const code = (verdict: string | RequestError) => (verdict as RequestError).code
    expect(code(a.admit(lease('198.51.100.1'), upgrade, true))).toBe('unavailable')
    expect(code(a.admit(lease('198.51.100.1'), { target: '/~bad name/' }, false))).toBe(
      'instance_invalid'
    )
    expect(
      code(a.admit(lease('198.51.100.1'), { target: '/', origin: 'https://evil.example' }, false))
    ).toBe('origin_not_allowed')
    expect(
      a.admit(lease('198.51.100.1'), { target: '/', origin: 'https://Phorge.example.org' }, false)
    ).toBe('default')
    expect(stats.origin).toBe(1)
  })

  it('logs a refusal of each kind at most once per interval, with the count since', () => {
    const { a, clock, logger } = admission({ connectionsPerSecond: 1 })
    expect(a.accept('203.0.113.1', {})).not.toBeInstanceOf(RequestError)
    for (let i = 0; i < 5; i++) {
      expect((a.accept('203.0.113.1', {}) as RequestError).code).toBe('rate_limited')
    }
    expect(logger.lines).toHaveLength(1)
    clock.advance(10_000)
    a.accept('203.0.113.1', {})
    a.accept('203.0.113.1', {})
    expect(logger.lines).toHaveLength(2)
    expect(logger.lines[1]).toMatch(
      /\[203\.0\.113\.1\].*\(… and 4 more like this since the last such line\)$/
    )
  })
})

describe('access configuration', () => {
  const parse = (extra: Record<string, unknown>) => () => parseConfig(loopbackConfig(extra))

  it('has the per-address limits that proxies would trip off by default, the rest on', () => {
    const config = parse({})()
    expect(config.limits).toMatchObject({
      connectionsPerIp: 0,
      connectionsPerSecond: 0,
      trustedProxies: [],
      framesPerSecond: 100,
      handshakesPerIp: 256,
      handshakeTimeout: 10_000,
      idBytes: 256,
      subscriptionBytes: 64 * 1024,
    })
    expect(config.origins).toBeUndefined()
  })

  it('names a bad trusted proxy entry', () => {
    expect(parse({ limits: { trustedProxies: ['10.0.0.0/8', 'proxy.local'] } })).toThrow(
      `Parameter 'limits.trustedProxies.1' has invalid value "proxy.local": must be an IP address or a CIDR range like "10.0.0.0/8".`
    )
    for (const bad of ['10.0.0.0/33', '::/129', '1.2.3', '256.1.1.1', '10.0.0.0/x', '']) {
      expect(parse({ limits: { trustedProxies: [bad] } })).toThrow(/trustedProxies\.0/)
    }
    for (const good of ['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8', '2001:db8::1/128']) {
      expect(parse({ limits: { trustedProxies: [good] } })).not.toThrow()
    }
  })

  it('names an origin that is not written as browsers send it', () => {
    for (const bad of [
      'https://phorge.example.org/',
      'https://Phorge.example.org',
      'phorge.example.org',
      'ftp://x.example',
      'https://x.example:443',
    ]) {
      expect(parse({ origins: [bad] })).toThrow(
        `Parameter 'origins.0' has invalid value ${JSON.stringify(bad)}: must be an origin like "https://phorge.example.org" (scheme, lower-case host and port only, no path or trailing slash).`
      )
    }
    expect(
      parse({ origins: ['https://phorge.example.org', 'http://127.0.0.1:8080'] })
    ).not.toThrow()
    expect(parse({ origins: [] })).toThrow(/origins/)
    expect(parse({ origins: null })).not.toThrow()
  })
})

describe('admin exposure warning', () => {
  const admin = (host: string) => ({ type: 'admin' as const, index: 1, host, port: 22281 })

  it('warns for an admin server beyond loopback without a secret', () => {
    expect(adminExposureWarnings([admin('0.0.0.0')], undefined)).toEqual([
      'Admin server (at index "1") listens on 0.0.0.0:22281, beyond loopback, and no "secret" is set: anyone who can reach it can publish to every client. Set "secret" in the configuration or listen on 127.0.0.1.',
    ])
    expect(adminExposureWarnings([admin('::')], null)).toHaveLength(1)
    expect(adminExposureWarnings([admin('10.0.0.5')], undefined)).toHaveLength(1)
  })

  it('stays quiet on loopback, with a secret, and for client servers', () => {
    for (const host of ['127.0.0.1', '::1', 'localhost', '127.0.0.2']) {
      expect(adminExposureWarnings([admin(host)], undefined)).toEqual([])
    }
    expect(adminExposureWarnings([admin('0.0.0.0')], 's3cret')).toEqual([])
    expect(
      adminExposureWarnings([{ type: 'client', index: 0, host: '0.0.0.0', port: 1 }], undefined)
    ).toEqual([])
  })
})
