/**
 * The embedded default configuration: Aphlict's default file, so `tidings` runs with no
 * config file at all. The client port is public; the admin port stays on loopback.
 */
export const DEFAULT_CONFIG = {
  servers: [
    {
      type: 'client',
      port: 22280,
      listen: '0.0.0.0',
      'ssl.key': null,
      'ssl.cert': null,
      'ssl.chain': null,
    },
    {
      type: 'admin',
      port: 22281,
      listen: '127.0.0.1',
      'ssl.key': null,
      'ssl.cert': null,
      'ssl.chain': null,
    },
  ],
  logs: [],
  cluster: [],
  pidfile: '/var/tmp/tidings/tidings.pid',
} as const
