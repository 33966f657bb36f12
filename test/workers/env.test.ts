/** Worker vars and secrets → settings, validated with the core's config schema and wording. */
import { describe, expect, it } from 'vitest'
import { parseSettings, settingsOf } from '../../adapters/workers/env.ts'
import { ConfigError } from '../../src/errors.ts'

describe('workers adapter: settings from the environment', () => {
  it('defaults to one shard, the core defaults and no secret', () => {
    const settings = parseSettings({})
    expect(settings).toMatchObject({ shards: 1, secret: undefined, open: false, trace: false })
    expect(settings.config.limits.subscriptionsPerConnection).toBe(1000)
    expect(settings.config.history.age).toBe(60_000)
    expect(settings.config.cluster).toEqual([])
  })

  it('reads limits, history, cluster, relay and origins from TIDINGS_CONFIG', () => {
    const settings = parseSettings({
      TIDINGS_SECRET: 's3cret',
      TIDINGS_SHARDS: '8',
      TIDINGS_CONFIG: JSON.stringify({
        limits: { frameBytes: 2048 },
        history: { size: 10 },
        cluster: [{ host: 'node.example', port: 22281, protocol: 'https', secret: 'peer' }],
        relay: { timeout: 1000 },
        origins: ['https://phorge.example.org'],
      }),
    })
    expect(settings.shards).toBe(8)
    expect(settings.config.limits.frameBytes).toBe(2048)
    expect(settings.config.history.size).toBe(10)
    expect(settings.config.cluster[0]).toMatchObject({ host: 'node.example', secret: 'peer' })
    expect(settings.config.relay.timeout).toBe(1000)
    // The secret peers must send is also the one relays carry by default, as on Node.
    expect(settings.config.secret).toBe('s3cret')
  })

  it.each([
    [{ TIDINGS_SHARDS: '0' }, /TIDINGS_SHARDS must be a whole number from 1 to 32, got "0"/],
    [{ TIDINGS_SHARDS: '33' }, /TIDINGS_SHARDS/],
    [{ TIDINGS_SHARDS: '2.5' }, /TIDINGS_SHARDS/],
    [{ TIDINGS_INSECURE_OPEN: 'yes' }, /TIDINGS_INSECURE_OPEN must be "1" or "0"/],
    [
      { TIDINGS_INSECURE_OPEN: '1', TIDINGS_SECRET: 'x' },
      /TIDINGS_INSECURE_OPEN and TIDINGS_SECRET are both set/,
    ],
    [{ TIDINGS_CONFIG: '{nope' }, /TIDINGS_CONFIG is not valid JSON/],
    [{ TIDINGS_CONFIG: '[]' }, /TIDINGS_CONFIG must be a JSON object/],
    [{ TIDINGS_CONFIG: '{"servers":[]}' }, /key "servers" does not apply on Workers/],
    [{ TIDINGS_CONFIG: '{"secret":"x"}' }, /TIDINGS_SECRET Worker secret/],
    [
      { TIDINGS_CONFIG: '{"limits":{"frameBytes":"big"}}' },
      /TIDINGS_CONFIG: .*'limits.frameBytes' has invalid type/,
    ],
    [{ TIDINGS_CONFIG: '{"limits":{"connectionsPerIp":5}}' }, /Cloudflare rate limiting rule/],
    [{ TIDINGS_CONFIG: '{"relay":{"ca":"/etc/ca.pem"}}' }, /"relay.ca" does not apply on Workers/],
    [
      { TIDINGS_CONFIG: '{"cluster":[{"host":"a","port":1,"protocol":"ftp"}]}' },
      /invalid protocol, "ftp"/,
    ],
  ])('refuses %j naming the variable', (vars, message) => {
    expect(() => parseSettings(vars)).toThrow(ConfigError)
    expect(() => parseSettings(vars)).toThrow(message)
  })

  it('parses each environment once and hands back a bad one as a ConfigError', () => {
    const env = { TIDINGS_SHARDS: 'many' }
    const first = settingsOf(env)
    expect(first).toBeInstanceOf(ConfigError)
    expect(settingsOf(env)).toBe(first)
    const good = { TIDINGS_SHARDS: '2' }
    expect(settingsOf(good)).toBe(settingsOf(good))
  })
})
