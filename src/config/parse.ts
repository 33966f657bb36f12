/**
 * Validates a configuration object once, at start-up, in the order Aphlict's PHP validator
 * does, with its wording. The first problem found is thrown as a ConfigError.
 */
import type * as z from 'zod'
import { ConfigError } from '../errors.ts'
import { ipFamily } from '../net/address.ts'
import {
  type Config,
  configSchema,
  type LogEntry,
  logSchema,
  type PeerEntry,
  peerSchema,
  type ServerEntry,
  serverSchema,
} from './schema.ts'

const TOP_LEVEL = 'Configuration file has improper configuration keys at top level.'

/** Aphlict's top-level wording for top-level keys; a tidings section names itself. */
function topLevelContext(error: z.ZodError): string {
  const path =
    error.issues.find((issue) => issue.code === 'unrecognized_keys')?.path ??
    error.issues[0]?.path ??
    []
  const nested =
    path.length > 1 || (path.length === 1 && error.issues[0]?.code === 'unrecognized_keys')
  return nested ? `Configuration file has an invalid "${String(path[0])}" section.` : TOP_LEVEL
}

/** Aphlict-style type names, as the PHP validator prints them. */
function typeName(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'list<wild>'
  if (typeof value === 'object') return 'map<string, wild>'
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float'
  if (typeof value === 'boolean') return 'bool'
  return typeof value
}

const EXPECTED: Record<string, string> = {
  array: 'list<wild>',
  object: 'map<string, wild>',
  number: 'int',
  int: 'int',
  string: 'string',
  boolean: 'bool',
}

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let node = root
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<PropertyKey, unknown>)[key]
  }
  return node
}

function dotted(path: PropertyKey[]): string {
  return path.map(String).join('.')
}

/** Turns the first zod issue into Aphlict's inner message ("Got unexpected parameters: …"). */
function describe(error: z.ZodError, input: unknown): string {
  const issues = error.issues
  const unknownKeys = issues.find((issue) => issue.code === 'unrecognized_keys')
  if (unknownKeys && unknownKeys.code === 'unrecognized_keys') {
    const where = unknownKeys.path.length > 0 ? ` in "${dotted(unknownKeys.path)}"` : ''
    return `Got unexpected parameters${where}: ${unknownKeys.keys.join(', ')}`
  }
  const missing = issues.filter(
    (issue) => issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined
  )
  if (missing.length > 0) {
    return `Missing required parameters: ${missing.map((issue) => dotted(issue.path)).join(', ')}`
  }
  const issue = issues[0]
  if (!issue) return 'Unknown validation failure.'
  const name = dotted(issue.path)
  const value = valueAt(input, issue.path)
  if (issue.code === 'invalid_type') {
    const expected = EXPECTED[issue.expected] ?? issue.expected
    return `Parameter '${name}' has invalid type. Expected type '${expected}', got type '${typeName(value)}'.`
  }
  return `Parameter '${name}' has invalid value ${JSON.stringify(value)}: ${issue.message}.`
}

function check<T>(
  schema: z.ZodType<T>,
  input: unknown,
  context: (inner: string, error?: z.ZodError) => string
): T {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError(context(`Expected a JSON object, got type '${typeName(input)}'.`))
  }
  const result = schema.safeParse(input)
  if (!result.success) {
    throw new ConfigError(context(describe(result.error, input), result.error))
  }
  return result.data
}

/** A host name as a resolver takes it: dot-separated labels of letters, digits and hyphens. */
const HOST_NAME =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i

/** `listen` is an IP address or a host name; anything else fails at bind time, so say so now. */
function isListenHost(listen: string): boolean {
  return ipFamily(listen) !== 0 || HOST_NAME.test(listen)
}

function checkServers(servers: ServerEntry[]): void {
  const portOwner = new Map<number, number>()
  servers.forEach((server, index) => {
    const { port, type } = server
    const previous = portOwner.get(port)
    // Port 0 asks the OS for a free port, so several servers may use it (tests do).
    if (previous !== undefined && port !== 0) {
      throw new ConfigError(
        `Two servers (at indexes "${previous}" and "${index}") both bind to the same port ("${port}"). Each server must bind to a unique port.`
      )
    }
    portOwner.set(port, index)
    const at = `A specified server (at index "${index}", on port "${port}")`
    if (type !== 'admin' && type !== 'client') {
      throw new ConfigError(
        `${at} has an invalid type ("${type}"). Valid types are: admin, client.`
      )
    }
    const hasKey = Boolean(server['ssl.key'])
    const hasCert = Boolean(server['ssl.cert'])
    if (hasKey !== hasCert) {
      throw new ConfigError(
        `${at} specifies only one of "ssl.key" and "ssl.cert". Each server must specify neither (to disable SSL) or specify both (to enable it).`
      )
    }
    // "" means the default, as null does (Node would bind every interface, admin included).
    if (server.listen && !isListenHost(server.listen)) {
      throw new ConfigError(
        `${at} has an invalid "listen" value (${JSON.stringify(server.listen)}). Use an IP address (such as 0.0.0.0, 127.0.0.1 or ::) or a host name of this machine.`
      )
    }
    if (server['ssl.chain'] && !hasKey) {
      throw new ConfigError(
        `${at} specifies a value for "ssl.chain", but no value for "ssl.key" or "ssl.cert". Servers should only provide an SSL chain if they also provide an SSL key and SSL certificate.`
      )
    }
  })
  if (servers.length === 0) {
    throw new ConfigError(
      'Configuration file does not specify any servers. This service will not be able to interact with the outside world if it does not listen on any ports. You must specify at least one "admin" server and at least one "client" server.'
    )
  }
  if (!servers.some((server) => server.type === 'client')) {
    throw new ConfigError(
      'Configuration file does not specify any client servers. This service will be unable to transmit any notifications without a client server. You must specify at least one server with type "client".'
    )
  }
  if (!servers.some((server) => server.type === 'admin')) {
    throw new ConfigError(
      'Configuration file does not specify any administrative servers. This service will be unable to receive messages. You must specify at least one server with type "admin".'
    )
  }
}

function checkCluster(peers: PeerEntry[]): void {
  const seen = new Map<string, number>()
  peers.forEach((peer, index) => {
    if (peer.protocol !== 'http' && peer.protocol !== 'https') {
      throw new ConfigError(
        `Configuration file specifies cluster peer ("${peer.host}", at index "${index}") with an invalid protocol, "${peer.protocol}". Valid protocols are "http" or "https".`
      )
    }
    const key = `${peer.host}:${peer.port}`
    const previous = seen.get(key)
    if (previous !== undefined) {
      throw new ConfigError(
        `Configuration file specifies cluster peer "${key}" more than once (at indexes "${previous}" and "${index}"). Each peer must have a unique host and port combination.`
      )
    }
    seen.set(key, index)
  })
}

/** The URL as it may be printed: any password in it replaced by `***`. */
export function redactUrl(text: string): string {
  return text.replace(/(\/\/[^/@:]*:)[^/@]*@/, '$1***@')
}

/** A Redis URL as node-redis takes it; the reason it is not one otherwise. */
function redisUrlProblem(text: string): string | undefined {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return 'is not a URL'
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    return 'must start with redis:// or rediss://'
  }
  if (!url.hostname) return 'names no host'
  if (url.pathname.length > 1 && !/^\/\d+$/.test(url.pathname)) {
    return 'may name only a database number after the host (e.g. /0)'
  }
  return undefined
}

function checkBackplane(backplane: Config['backplane']): void {
  if (!backplane) return
  const { type } = backplane
  const single = type === 'redis'
  const needed = single ? 'url' : 'nodes'
  const other = single ? 'nodes' : 'url'
  if (backplane[needed] === undefined) {
    throw new ConfigError(
      `Parameter 'backplane.${needed}' is required for a backplane of type "${type}".`
    )
  }
  if (backplane[other] !== undefined) {
    throw new ConfigError(
      `Parameter 'backplane.${other}' is not used by a backplane of type "${type}"; use 'backplane.${needed}'.`
    )
  }
  const urls = single ? [backplane.url as string] : (backplane.nodes as string[])
  urls.forEach((url, index) => {
    const problem = redisUrlProblem(url)
    if (problem) {
      const where = single ? 'backplane.url' : `backplane.nodes.${index}`
      throw new ConfigError(
        `Parameter '${where}' has invalid value ${JSON.stringify(redactUrl(url))}: it ${problem}.`
      )
    }
  })
}

function checkRelay(relay: Config['relay']): void {
  if (relay.retryMax < relay.retryBase) {
    throw new ConfigError(
      `Parameter 'relay.retryMax' (${relay.retryMax}) must be at least 'relay.retryBase' (${relay.retryBase}).`
    )
  }
  if (relay.dedupSize > 0 && relay.dedupAge < relay.maxAge) {
    throw new ConfigError(
      `Parameter 'relay.dedupAge' (${relay.dedupAge}) must be at least 'relay.maxAge' (${relay.maxAge}): a relayed copy may arrive that late and must still be recognised.`
    )
  }
}

/**
 * Validates a parsed configuration file (any JSON value) and fills in defaults.
 * @throws ConfigError naming the offending key, index or value.
 */
export function parseConfig(input: unknown): Config {
  const top = check(
    configSchema,
    input,
    (inner, error) => `${error ? topLevelContext(error) : TOP_LEVEL} ${inner}`
  )
  const servers = top.servers.map((entry, index) =>
    check(serverSchema, entry, (inner) => `Server (at index "${index}"): ${inner}`)
  )
  checkServers(servers)
  const logs: LogEntry[] = (top.logs ?? []).map((entry, index) =>
    check(logSchema, entry, (inner) => `Log (at index "${index}"): ${inner}`)
  )
  const cluster: PeerEntry[] = (top.cluster ?? []).map((entry, index) =>
    check(peerSchema, entry, (inner) => `Cluster peer (at index "${index}"): ${inner}`)
  )
  checkCluster(cluster)
  checkRelay(top.relay)
  checkBackplane(top.backplane)
  return { ...top, servers, logs, cluster }
}

/** Parses configuration file text (JSON) and validates it. */
export function parseConfigText(text: string): Config {
  let input: unknown
  try {
    input = JSON.parse(text)
  } catch (error) {
    throw new ConfigError(
      `Configuration file is not properly formatted JSON. ${(error as Error).message}`
    )
  }
  return parseConfig(input)
}
