/**
 * Worker environment → settings. The Worker has no config file: its options come from vars
 * and secrets, validated once per isolate with the core's own config schema and wording.
 *
 * - `TIDINGS_SECRET` (secret): required on every admin and relay request.
 * - `TIDINGS_INSECURE_OPEN` = "1": serve admin requests without a secret (local development
 *   only; refused together with a secret).
 * - `TIDINGS_SHARDS`: Durable Objects per instance (1-32, default 1).
 * - `TIDINGS_CONFIG`: JSON with the config file's `limits`, `history`, `cluster`, `relay`
 *   and `origins` keys (the rest are about sockets, processes and files).
 * - `TIDINGS_TRACE` = "1": trace logging, as `tidings debug`.
 */
import { parseConfig } from '../../src/config/parse.ts'
import type { Config } from '../../src/config/schema.ts'
import { ConfigError } from '../../src/errors.ts'

/** The string vars and secrets the Worker reads (every one optional). */
export interface TidingsVars {
  TIDINGS_SECRET?: string | undefined
  TIDINGS_INSECURE_OPEN?: string | undefined
  TIDINGS_SHARDS?: string | undefined
  TIDINGS_CONFIG?: string | undefined
  TIDINGS_TRACE?: string | undefined
}

export interface WorkerSettings {
  /** The core config: `limits`, `history` and `cluster` as on Node, defaults filled in. */
  config: Config
  shards: number
  /** Required on admin and relay requests (none set: every admin request is refused). */
  secret: string | undefined
  /** Admin requests need no secret (TIDINGS_INSECURE_OPEN=1, local development). */
  open: boolean
  trace: boolean
}

export const MAX_SHARDS = 32

/** The config keys that mean something on Workers; the rest are about sockets and files. */
const WORKER_KEYS = new Set(['limits', 'history', 'cluster', 'relay', 'origins'])

/** The Worker's URL serves both ports, so the core validator gets two placeholder servers. */
const PLACEHOLDER_SERVERS = [
  { type: 'client', port: 0 },
  { type: 'admin', port: 0 },
]

function flag(name: string, value: string | undefined): boolean {
  if (value === undefined || value === '' || value === '0' || value === 'false') return false
  if (value === '1' || value === 'true') return true
  throw new ConfigError(`${name} must be "1" or "0", got ${JSON.stringify(value)}.`)
}

function readShards(value: string | undefined): number {
  if (value === undefined || value === '') return 1
  const shards = Number(value)
  if (!/^\d+$/.test(value) || shards < 1 || shards > MAX_SHARDS) {
    throw new ConfigError(
      `TIDINGS_SHARDS must be a whole number from 1 to ${MAX_SHARDS}, got ${JSON.stringify(value)}.`
    )
  }
  return shards
}

function readConfig(text: string | undefined): Config {
  let input: unknown = {}
  if (text !== undefined && text.trim() !== '') {
    try {
      input = JSON.parse(text)
    } catch (error) {
      throw new ConfigError(`TIDINGS_CONFIG is not valid JSON: ${(error as Error).message}`)
    }
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError('TIDINGS_CONFIG must be a JSON object.')
  }
  for (const key of Object.keys(input)) {
    if (!WORKER_KEYS.has(key)) {
      throw new ConfigError(
        `TIDINGS_CONFIG key "${key}" does not apply on Workers; use ${[...WORKER_KEYS].join(', ')}` +
          (key === 'secret' ? ' (the secret is the TIDINGS_SECRET Worker secret).' : '.')
      )
    }
  }
  let config: Config
  try {
    config = parseConfig({ ...input, servers: PLACEHOLDER_SERVERS })
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(`TIDINGS_CONFIG: ${error.message}`)
    throw error
  }
  const { connectionsPerIp, connectionsPerSecond, trustedProxies } = config.limits
  if (connectionsPerIp > 0 || connectionsPerSecond > 0 || trustedProxies.length > 0) {
    // Isolates share no memory, so a per-address count would be per isolate: meaningless.
    throw new ConfigError(
      'TIDINGS_CONFIG: "limits.connectionsPerIp", "limits.connectionsPerSecond" and "limits.trustedProxies" do not apply on Workers; use a Cloudflare rate limiting rule instead.'
    )
  }
  if (config.relay.ca) {
    throw new ConfigError(
      'TIDINGS_CONFIG: "relay.ca" does not apply on Workers; fetch trusts the public CAs only, so https peers need a publicly trusted certificate.'
    )
  }
  return config
}

/** @throws ConfigError naming the variable at fault. */
export function parseSettings(vars: TidingsVars): WorkerSettings {
  const open = flag('TIDINGS_INSECURE_OPEN', vars.TIDINGS_INSECURE_OPEN)
  const secret = vars.TIDINGS_SECRET === '' ? undefined : vars.TIDINGS_SECRET
  if (open && secret !== undefined) {
    throw new ConfigError(
      'TIDINGS_INSECURE_OPEN and TIDINGS_SECRET are both set; remove TIDINGS_INSECURE_OPEN outside local development.'
    )
  }
  const config = readConfig(vars.TIDINGS_CONFIG)
  // As on Node, the secret this node requires is also the one it relays with by default.
  config.secret = secret ?? null
  return {
    config,
    shards: readShards(vars.TIDINGS_SHARDS),
    secret,
    open,
    trace: flag('TIDINGS_TRACE', vars.TIDINGS_TRACE),
  }
}

const cache = new WeakMap<object, WorkerSettings | ConfigError>()

/** Settings for `env`, parsed once per isolate; a bad configuration is returned, not thrown. */
export function settingsOf(env: TidingsVars): WorkerSettings | ConfigError {
  let settings = cache.get(env)
  if (settings === undefined) {
    try {
      settings = parseSettings(env)
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      settings = error
    }
    cache.set(env, settings)
  }
  return settings
}
