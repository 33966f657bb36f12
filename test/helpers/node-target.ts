/** Starts the Node adapter in-process on free loopback ports, for the contract suite and node tests. */
import { type RunningServer, startServer } from '../../adapters/node/server.ts'
import { parseConfig } from '../../src/config/parse.ts'
import type { Logger } from '../../src/ports.ts'
import type { Target, TargetOptions } from '../contract/target.ts'

export const silentLogger: Logger = { tracing: false, log() {}, warn() {}, trace() {} }

/** A config object with a client and an admin server on 127.0.0.1, port 0. */
export function loopbackConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    servers: [
      { type: 'client', port: 0, listen: '127.0.0.1' },
      { type: 'admin', port: 0, listen: '127.0.0.1' },
    ],
    ...extra,
  }
}

export async function startNode(
  options: TargetOptions & { extra?: Record<string, unknown>; logger?: Logger } = {}
): Promise<RunningServer> {
  const config = parseConfig(
    loopbackConfig({
      limits: options.limits ?? {},
      history: options.history ?? {},
      ...(options.origins ? { origins: options.origins } : {}),
      ...options.extra,
    })
  )
  return startServer({ config, logger: options.logger ?? silentLogger })
}

export async function nodeTarget(options: TargetOptions = {}): Promise<Target> {
  const server = await startNode(options)
  return {
    clientUrl: server.url('client'),
    adminUrl: server.url('admin'),
    adminHeaders: {},
    close: () => server.close(1000),
  }
}
