/**
 * `tidings/node`: a tidings node started from your own program. The configuration is the
 * same object as the configuration file — the same keys, defaults and validation messages —
 * and the node is the one `tidings run` starts.
 *
 * ```ts
 * import { startTidings } from 'tidings/node'
 * const tidings = await startTidings({
 *   servers: [
 *     { type: 'client', port: 22280, listen: '0.0.0.0' },
 *     { type: 'admin', port: 22281, listen: '127.0.0.1' },
 *   ],
 * })
 * console.log(tidings.url('client'), tidings.status('default'))
 * await tidings.close()
 * ```
 */
import { parseConfig } from '../../src/config/parse.ts'
import type { Logger } from '../../src/ports.ts'
import type { StatusBody } from '../../src/tidings.ts'
import { NodeLogger } from './logger.ts'
import { type BoundServer, type RunningServer, startServer } from './server.ts'

export { DEFAULT_CONFIG } from '../../src/config/defaults.ts'
export { parseConfig } from '../../src/config/parse.ts'
export type { Config } from '../../src/config/schema.ts'
export { ConfigError, RequestError } from '../../src/errors.ts'
export type { TidingsNode } from '../../src/node/node.ts'
export type { Logger } from '../../src/ports.ts'
export type { StatusBody } from '../../src/tidings.ts'
export type { BoundServer } from './server.ts'
export { StartupError } from './startup-error.ts'

export interface StartOptions {
  /**
   * Where log lines go: `'files'` (the default) writes them to the config's `logs` and
   * warnings to stderr; `'console'` also prints every line to stdout; `'silent'` drops them;
   * or any object with log/warn/trace.
   */
  logger?: 'files' | 'console' | 'silent' | Logger
  /** Trace every connection, frame and delivery (as `tidings debug`). */
  trace?: boolean
}

export interface TidingsServer {
  /** Where each configured server listens (port 0 in the config: the port it got). */
  readonly servers: readonly BoundServer[]
  /** `ws://…` of the first client server, or `http://…` of the first admin server. */
  url(type: 'client' | 'admin'): string
  /** `/status/` of an instance (default `default`), as the admin port answers it. */
  status(instance?: string): StatusBody
  /** Applies a new configuration object to what can change live; says what needs a restart. */
  reload(next: unknown): { applied: string[]; restartNeeded: string[] }
  /** Closes client sockets with 4000 in waves over `drain.window`, then stops. */
  drain(): Promise<void>
  /** Closes client sockets with 1001 and stops listening. */
  close(): Promise<void>
  /** The node itself, for what this interface does not cover. */
  readonly running: RunningServer
}

const SILENT: Logger = { tracing: false, log() {}, warn() {}, trace() {} }

/**
 * Validates `config` (as the configuration file is) and starts a node on it.
 * @throws ConfigError naming the bad key; StartupError when a port cannot be bound.
 */
export async function startTidings(
  config: unknown,
  options: StartOptions = {}
): Promise<TidingsServer> {
  const parsed = parseConfig(config)
  const choice = options.logger ?? 'files'
  const files =
    typeof choice === 'string' && choice !== 'silent'
      ? new NodeLogger({
          paths: parsed.logs.map((log) => log.path),
          trace: options.trace ?? false,
          format: 'text',
          console: choice === 'console' ? (line) => process.stdout.write(`${line}\n`) : undefined,
        })
      : undefined
  const logger = typeof choice === 'object' ? choice : (files ?? SILENT)
  let running: RunningServer
  try {
    running = await startServer({ config: parsed, logger })
  } catch (error) {
    // A port that cannot be bound leaves nothing open behind it, log files included.
    await files?.close()
    throw error
  }
  return {
    servers: running.servers,
    url: (type) => running.url(type),
    status: (instance = 'default') => running.node.status(instance),
    reload: (next) =>
      running.reconfigure(parseConfig(next), { setLogs: (paths) => files?.reopen(paths) }),
    drain: async () => {
      await running.drain()
      await files?.close()
    },
    close: async () => {
      await running.close()
      await files?.close()
    },
    running,
  }
}
