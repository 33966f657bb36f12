/**
 * The start-up check for admin servers reachable from beyond this host without a secret:
 * anyone who can reach such a port can publish to every client, so tidings says so loudly.
 */

export interface ListeningServer {
  type: 'client' | 'admin'
  index: number
  host: string
  port: number
}

/** True when `host` (a listen address) is reachable only from this machine. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('::ffff:') ? host.slice(7) : host
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare)
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
