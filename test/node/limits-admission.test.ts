/** Admission and exposure checks in-process: address keys, X-Forwarded-For, config messages, warnings. */
import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { Admission, addressKey, ipv6Prefix64 } from '../../adapters/node/admission.ts'
import { adminExposureWarnings } from '../../adapters/node/exposure.ts'
import { parseConfig } from '../../src/config/parse.ts'
import { newLimitStats } from '../../src/limit-stats.ts'
import { RecordingLogger } from '../helpers/fakes.ts'
import { loopbackConfig } from '../helpers/node-target.ts'

function request(remoteAddress: string, headers: Record<string, string> = {}): IncomingMessage {
  return { socket: { remoteAddress }, headers } as unknown as IncomingMessage
}

function admission(trustedProxies: string[], connectionsPerIp = 1) {
  return new Admission({
    limits: { connectionsPerIp, connectionsPerSecond: 0, trustedProxies },
    stats: newLimitStats(),
    logger: new RecordingLogger(),
  })
}

describe('client addresses', () => {
  it('keys IPv4 as is, IPv4-mapped IPv6 as IPv4 and IPv6 by its /64', () => {
    expect(addressKey('203.0.113.9')).toBe('203.0.113.9')
    expect(addressKey('::ffff:203.0.113.9')).toBe('203.0.113.9')
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:DB8::1')).toBe('2001:db8:0:0::/64')
    expect(addressKey('::1')).toBe('0:0:0:0::/64')
    expect(ipv6Prefix64('::ffff:1.2.3.4')).toBe('0:0:0:0')
    expect(ipv6Prefix64('fe80::1:2:3:4')).toBe('fe80:0:0:0')
  })

  it('ignores X-Forwarded-For from an untrusted peer', () => {
    const a = admission([])
    expect(a.clientAddress(request('198.51.100.1', { 'x-forwarded-for': '203.0.113.5' }))).toBe(
      '198.51.100.1'
    )
  })

  it('takes the rightmost untrusted X-Forwarded-For hop from a trusted proxy', () => {
    const a = admission(['10.0.0.0/8', '127.0.0.1', '2001:db8::/32'])
    const from = (peer: string, xff?: string) =>
      a.clientAddress(request(peer, xff === undefined ? {} : { 'x-forwarded-for': xff }))
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

  it('counts an address until its socket closes, then forgets it', () => {
    const a = admission([], 2)
    const listeners: (() => void)[] = []
    const socket = () => ({ once: (_: string, fn: () => void) => listeners.push(fn) }) as never
    const first = socket()
    expect(a.admit(request('203.0.113.1'), first)).toBeUndefined()
    expect(a.admit(request('203.0.113.1'), socket())).toBeUndefined()
    expect(a.admit(request('203.0.113.1'), socket())?.code).toBe('too_many_connections')
    expect(a.admit(request('203.0.113.2'), socket())).toBeUndefined()
    expect(a.openFrom('203.0.113.1')).toBe(2)
    listeners[0]?.call(first)
    expect(a.openFrom('203.0.113.1')).toBe(1)
    listeners[0]?.call(first) // a second close event changes nothing
    expect(a.openFrom('203.0.113.1')).toBe(1)
  })

  it('logs a refusal of each kind at most once a minute, with the count since', () => {
    let now = 0
    const logger = new RecordingLogger()
    const a = new Admission({
      limits: { connectionsPerIp: 0, connectionsPerSecond: 1, trustedProxies: [] },
      stats: newLimitStats(),
      logger,
      now: () => now,
    })
    const socket = { once() {} } as never
    expect(a.admit(request('203.0.113.1'), socket)).toBeUndefined()
    for (let i = 0; i < 5; i++)
      expect(a.admit(request('203.0.113.1'), socket)?.code).toBe('rate_limited')
    expect(logger.lines).toHaveLength(1)
    now = 61_000
    a.admit(request('203.0.113.1'), socket)
    a.admit(request('203.0.113.1'), socket)
    expect(logger.lines).toHaveLength(2)
    expect(logger.lines[1]).toMatch(/\[203\.0\.113\.1\].*\(4 more since the last such line\)$/)
  })
})

describe('access configuration', () => {
  const parse = (extra: Record<string, unknown>) => () => parseConfig(loopbackConfig(extra))

  it('has every admission limit off by default', () => {
    const config = parse({})()
    expect(config.limits).toMatchObject({
      connectionsPerIp: 0,
      connectionsPerSecond: 0,
      trustedProxies: [],
      framesPerSecond: 100,
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
