/**
 * The start-up check for admin servers reachable from beyond this host without a secret:
 * anyone who can reach such a port can publish to every client, so tidings says so loudly.
 */
import { isLoopbackHost } from '../../src/net/address.ts'

export interface ListeningServer {
  type: 'client' | 'admin'
  index: number
  host: string
  port: number
}

/** One warning line per admin server that listens beyond loopback while no `secret` is set. */
export function adminExposureWarnings(
  servers: readonly ListeningServer[],
  secret: string | null | undefined
): string[] {
  if (secret) return []
  return servers
    .filter((server) => server.type === 'admin' && !isLoopbackHost(server.host))
    .map(
      (server) =>
        `Admin server (at index "${server.index}") listens on ${server.host}:${server.port}, beyond loopback, and no "secret" is set: anyone who can reach it can publish to every client. Set "secret" in the configuration or listen on 127.0.0.1.`
    )
}
