/**
 * Creating and binding the HTTP(S) servers of a config. Every server binds or none does:
 * a port that cannot be bound closes the others and fails start-up with a clear message.
 */
import { lookup } from 'node:dns/promises'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Server as NetServer } from 'node:net'
import type { ServerEntry } from '../../src/config/schema.ts'
import { ConfigError } from '../../src/errors.ts'
import { ipFamily } from '../../src/net/address.ts'
import { StartupError } from './startup-error.ts'

export { StartupError } from './startup-error.ts'

const DEFAULT_LISTEN = { client: '0.0.0.0', admin: '127.0.0.1' } as const

/** The address a server binds: `listen`, or its type's default when unset, null or "". */
export function listenAddress(entry: ServerEntry): string {
  return entry.listen || DEFAULT_LISTEN[entry.type as 'client' | 'admin']
}

/**
 * `tidings test`: a `listen` host name that does not resolve would fail only at bind time.
 * (An IP address is not checked against this machine's interfaces: a floating address may be
 * bound before it arrives, with `ip_nonlocal_bind`.)
 */
export async function checkListenHosts(servers: readonly ServerEntry[]): Promise<void> {
  for (const [index, entry] of servers.entries()) {
    const host = listenAddress(entry)
    if (ipFamily(host) !== 0) continue
    try {
      await lookup(host)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message
      throw new ConfigError(
        `A specified server (at index "${index}", on port "${entry.port}") listens on "${host}", which does not resolve to an address (${code}). Use an IP address (such as 0.0.0.0, 127.0.0.1 or ::) or a host name of this machine.`
      )
    }
  }
}

function describe(entry: ServerEntry, index: number): string {
  return `${entry.type} server (at index "${index}")`
}

function readPem(
  entry: ServerEntry,
  index: number,
  key: 'ssl.key' | 'ssl.cert' | 'ssl.chain'
): string {
  const path = entry[key] as string
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new StartupError(
      `Unable to read "${key}" file "${path}" for the ${describe(entry, index)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`
    )
  }
}

/** An HTTP server for the entry, or HTTPS when it names a key and certificate. */
export function createEntryServer(
  entry: ServerEntry,
  index: number,
  handler: RequestListener
): Server {
  if (!entry['ssl.key']) return createHttpServer(handler)
  let cert = readPem(entry, index, 'ssl.cert')
  if (entry['ssl.chain']) cert += `\n${readPem(entry, index, 'ssl.chain')}`
  return createHttpsServer({ key: readPem(entry, index, 'ssl.key'), cert }, handler)
}

const REASONS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this host',
}

/** The environment variable tidings' own restart hands listening descriptors over in. */
export const HANDOVER_FDS = 'TIDINGS_LISTEN_FDS'

/**
 * Listening descriptors this process was started with, one per configured server in order:
 * from a tidings restart (`TIDINGS_LISTEN_FDS=3,4`) or from systemd socket activation
 * (`LISTEN_FDS`/`LISTEN_PID`: descriptors 3, 4, … in the order of the socket unit's
 * `ListenStream=` lines, which must be the order of `servers`). Undefined when there are
 * none. The variables are removed, so processes this one starts do not see them.
 * @throws StartupError when their number does not match the configuration.
 */
export function inheritedFds(servers: number): number[] | undefined {
  const own = process.env[HANDOVER_FDS]
  const systemd =
    process.env.LISTEN_PID === String(process.pid) ? process.env.LISTEN_FDS : undefined
  for (const name of [HANDOVER_FDS, 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) {
    delete process.env[name]
  }
  let fds: number[] | undefined
  if (own) fds = own.split(',').map(Number)
  else if (systemd) fds = Array.from({ length: Number(systemd) }, (_, i) => 3 + i)
  if (!fds) return undefined
  if (fds.length !== servers || fds.some((fd) => !Number.isInteger(fd) || fd < 3)) {
    throw new StartupError(
      `This process was given ${fds.length} listening sockets (${own ? HANDOVER_FDS : 'systemd LISTEN_FDS'}) but the configuration has ${servers} servers; give one socket per server, in the order of "servers".`
    )
  }
  return fds
}

function bind(
  server: Server | NetServer,
  entry: ServerEntry,
  index: number,
  fd: number | undefined
): Promise<AddressInfo> {
  const host = fd === undefined ? listenAddress(entry) : `descriptor ${fd}`
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const reason = REASONS[error.code ?? ''] ?? error.message
      reject(
        new StartupError(
          `Unable to listen on ${host}:${entry.port} for the ${describe(entry, index)}: ${reason}${error.code ? ` (${error.code})` : ''}.`
        )
      )
    }
    server.once('error', onError)
    const listening = (): void => {
      server.off('error', onError)
      resolve(server.address() as AddressInfo)
    }
    if (fd === undefined) server.listen(entry.port, host, listening)
    else server.listen({ fd }, listening)
  })
}

/** Binds every server; on any failure closes those already bound and rethrows. */
export async function bindAll(
  servers: readonly { server: Server | NetServer; entry: ServerEntry; index: number }[],
  fds?: readonly number[]
): Promise<AddressInfo[]> {
  const results = await Promise.allSettled(
    servers.map(({ server, entry, index }, i) => bind(server, entry, index, fds?.[i]))
  )
  const failure = results.find((result) => result.status === 'rejected')
  if (failure) {
    await Promise.all(
      servers.map(
        ({ server }) =>
          new Promise<void>((resolve) =>
            server.listening ? server.close(() => resolve()) : resolve()
          )
      )
    )
    throw failure.reason
  }
  return results.map((result) => (result as PromiseFulfilledResult<AddressInfo>).value)
}
