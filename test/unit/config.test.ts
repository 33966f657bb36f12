import { describe, expect, it } from 'vitest'
import { DEFAULT_CONFIG } from '../../src/config/defaults.ts'
import { parseConfig, parseConfigText } from '../../src/config/parse.ts'
import { ConfigError } from '../../src/errors.ts'

const client = { type: 'client', port: 22280 }
const admin = { type: 'admin', port: 22281 }

function failure(input: unknown): string {
  try {
    parseConfig(input)
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return (error as Error).message
  }
  throw new Error('expected a ConfigError')
}

describe('parseConfig', () => {
  it('accepts the embedded default (Aphlict default file shape) and fills in tidings defaults', () => {
    const config = parseConfig(structuredClone(DEFAULT_CONFIG))
    expect(config.servers.map((s) => [s.type, s.port, s.listen])).toEqual([
      ['client', 22280, '0.0.0.0'],
      ['admin', 22281, '127.0.0.1'],
    ])
    expect(config.history).toEqual({ size: 4096, age: 60_000, bytes: 16 * 1024 * 1024 })
    expect(config.limits.bodyBytes).toBe(1024 * 1024)
    expect(config.websocket.perMessageDeflate).toBe(false)
  })

  it('accepts an Aphlict config with logs, cluster, pidfile and memory.hint', () => {
    const config = parseConfig({
      servers: [
        { ...client, listen: '0.0.0.0', 'ssl.key': '/k', 'ssl.cert': '/c', 'ssl.chain': '/ch' },
        { ...admin, listen: null },
      ],
      logs: [{ path: '/var/log/aphlict.log' }],
      cluster: [{ host: 'a.example', port: 22281, protocol: 'http' }],
      pidfile: '/var/tmp/aphlict/pid/aphlict.pid',
      'memory.hint': 512,
    })
    expect(config.cluster).toHaveLength(1)
    expect(config['memory.hint']).toBe(512)
  })

  it('rejects unknown top-level keys, naming them', () => {
    expect(failure({ servers: [client, admin], bogus: 1, other: 2 })).toBe(
      'Configuration file has improper configuration keys at top level. Got unexpected parameters: bogus, other'
    )
  })

  it('rejects a missing servers key', () => {
    expect(failure({ logs: [] })).toBe(
      'Configuration file has improper configuration keys at top level. Missing required parameters: servers'
    )
  })

  it('rejects a servers value of the wrong type with Aphlict type names', () => {
    expect(failure({ servers: 'x' })).toBe(
      "Configuration file has improper configuration keys at top level. Parameter 'servers' has invalid type. Expected type 'list<wild>', got type 'string'."
    )
  })

  it('names the index of a server with a wrong type, unknown key or missing key', () => {
    expect(failure({ servers: [client, { type: 'admin', port: '22281' }] })).toBe(
      `Server (at index "1"): Parameter 'port' has invalid type. Expected type 'int', got type 'string'.`
    )
    expect(failure({ servers: [{ ...client, colour: 'red' }, admin] })).toBe(
      'Server (at index "0"): Got unexpected parameters: colour'
    )
    expect(failure({ servers: [client, { port: 1 }] })).toBe(
      'Server (at index "1"): Missing required parameters: type'
    )
  })

  it('rejects duplicate ports with the Aphlict message', () => {
    expect(failure({ servers: [client, { type: 'admin', port: 22280 }] })).toBe(
      'Two servers (at indexes "0" and "1") both bind to the same port ("22280"). Each server must bind to a unique port.'
    )
  })

  it('allows several servers on port 0 (a free port each)', () => {
    expect(
      parseConfig({
        servers: [
          { type: 'client', port: 0 },
          { type: 'admin', port: 0 },
        ],
      }).servers
    ).toHaveLength(2)
  })

  it('rejects an invalid server type', () => {
    expect(failure({ servers: [client, { type: 'weird', port: 1 }] })).toBe(
      'A specified server (at index "1", on port "1") has an invalid type ("weird"). Valid types are: admin, client.'
    )
  })

  it('rejects half-specified TLS and a chain without key and cert', () => {
    expect(failure({ servers: [{ ...client, 'ssl.key': '/k' }, admin] })).toContain(
      'specifies only one of "ssl.key" and "ssl.cert"'
    )
    expect(failure({ servers: [{ ...client, 'ssl.chain': '/ch' }, admin] })).toContain(
      'specifies a value for "ssl.chain", but no value for "ssl.key" or "ssl.cert"'
    )
  })

  it('requires at least one server, one client and one admin server', () => {
    expect(failure({ servers: [] })).toMatch(/^Configuration file does not specify any servers\./)
    expect(failure({ servers: [admin] })).toMatch(/does not specify any client servers/)
    expect(failure({ servers: [client] })).toMatch(/does not specify any administrative servers/)
  })

  it('rejects bad and duplicate cluster peers', () => {
    const servers = [client, admin]
    expect(failure({ servers, cluster: [{ host: 'h', port: 1, protocol: 'ftp' }] })).toBe(
      'Configuration file specifies cluster peer ("h", at index "0") with an invalid protocol, "ftp". Valid protocols are "http" or "https".'
    )
    expect(
      failure({
        servers,
        cluster: [
          { host: 'h', port: 1, protocol: 'http' },
          { host: 'h', port: 1, protocol: 'https' },
        ],
      })
    ).toBe(
      'Configuration file specifies cluster peer "h:1" more than once (at indexes "0" and "1"). Each peer must have a unique host and port combination.'
    )
    expect(failure({ servers, cluster: [{ host: 'h', protocol: 'http' }] })).toBe(
      'Cluster peer (at index "0"): Missing required parameters: port'
    )
  })

  it('rejects a log entry without a path', () => {
    expect(failure({ servers: [client, admin], logs: [{}] })).toBe(
      'Log (at index "0"): Missing required parameters: path'
    )
  })

  it('validates tidings-only keys and names the bad field', () => {
    expect(failure({ servers: [client, admin], history: { size: -1 } })).toMatch(
      /^Configuration file has an invalid "history" section\. Parameter 'history\.size' has invalid value -1/
    )
    expect(failure({ servers: [client, admin], limits: { nope: 1 } })).toBe(
      'Configuration file has an invalid "limits" section. Got unexpected parameters in "limits": nope'
    )
    expect(failure({ servers: [client, admin], limits: 3 })).toBe(
      "Configuration file has improper configuration keys at top level. Parameter 'limits' has invalid type. Expected type 'map<string, wild>', got type 'int'."
    )
  })

  it('takes an IP address or a host name for listen, and names anything else', () => {
    for (const listen of [
      '0.0.0.0',
      '::',
      '127.0.0.1',
      'fe80::1',
      'localhost',
      'rt-1.example.com',
      null,
    ]) {
      expect(() => parseConfig({ servers: [{ ...client, listen }, admin] })).not.toThrow()
    }
    for (const listen of ['not an ip', 'http://x', '1.2.3.4:80', '[::1]', '-x.example']) {
      expect(failure({ servers: [{ ...client, listen }, admin] })).toBe(
        `A specified server (at index "0", on port "22280") has an invalid "listen" value (${JSON.stringify(listen)}). Use an IP address (such as 0.0.0.0, 127.0.0.1 or ::) or a host name of this machine.`
      )
    }
  })

  it('validates the backplane and names the key, never printing a password', () => {
    const servers = [client, admin]
    expect(
      parseConfig({ servers, backplane: { type: 'redis', url: 'redis://h:6379' } }).backplane
    ).toEqual({
      type: 'redis',
      url: 'redis://h:6379',
      prefix: 'tidings:',
      connectTimeout: 5000,
      commandTimeout: 2000,
      buffer: 10_000,
      bufferBytes: 16 * 1024 * 1024,
      routing: 'instance',
    })
    expect(parseConfig({ servers }).backplane).toBeUndefined()
    const cases: [unknown, string][] = [
      [
        { type: 'kafka' },
        'Configuration file has an invalid "backplane" section. Parameter \'backplane.type\' has invalid value "kafka"',
      ],
      [
        { type: 'redis' },
        'Parameter \'backplane.url\' is required for a backplane of type "redis".',
      ],
      [
        { type: 'redis-cluster', url: 'redis://h' },
        'Parameter \'backplane.nodes\' is required for a backplane of type "redis-cluster".',
      ],
      [
        { type: 'redis', url: 'redis://h', nodes: ['redis://h'] },
        "Parameter 'backplane.nodes' is not used by a backplane of type \"redis\"; use 'backplane.url'.",
      ],
      [
        { type: 'redis', url: 'http://u:hunter2@h' },
        'Parameter \'backplane.url\' has invalid value "http://u:***@h": it must start with redis:// or rediss://.',
      ],
      [
        { type: 'redis-cluster', nodes: ['redis://a', 'redis://:hunter2@b/x'] },
        'Parameter \'backplane.nodes.1\' has invalid value "redis://:***@b/x": it may name only a database number after the host (e.g. /0).',
      ],
      [
        { type: 'redis', url: 'redis://h', prefix: 'a b' },
        'Configuration file has an invalid "backplane" section. Parameter \'backplane.prefix\' has invalid value "a b": must be 1-64 characters of A-Z a-z 0-9 : . _ -.',
      ],
      [
        { type: 'redis', url: 'redis://h', routing: 'topic' },
        'Configuration file has an invalid "backplane" section. Parameter \'backplane.routing\' has invalid value "topic"',
      ],
    ]
    for (const [backplane, message] of cases) {
      const text = failure({ servers, backplane })
      expect(text.startsWith(message), text).toBe(true)
      expect(text).not.toContain('hunter2')
    }
  })

  it('rejects a file that is not a JSON object', () => {
    expect(failure([1])).toMatch(/Expected a JSON object, got type 'list<wild>'/)
  })
})

describe('parseConfigText', () => {
  it('reports malformed JSON with Aphlict wording', () => {
    expect(() => parseConfigText('{"servers": [')).toThrow(
      /^Configuration file is not properly formatted JSON\. /
    )
  })
})
