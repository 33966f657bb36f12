/**
 * The `tidings` command line. Subcommands follow Aphlict's `bin/aphlict`; the original Node
 * server's own flags (`--config=FILE`, `--debug=1`, `--test=true`) work too.
 */
import { parseArgs } from 'node:util'
import type { Config } from '../../src/config/schema.ts'
import { ConfigError } from '../../src/errors.ts'
import { loadConfig } from './config-file.ts'
import { StartupError } from './startup-error.ts'
import { HELP, UsageError } from './usage.ts'

// Each command loads only what it needs (`tidings test` never loads the servers), so the
// CLI starts fast.

const OPTIONS = {
  config: { type: 'string' },
  'log-format': { type: 'string', default: 'text' },
  timeout: { type: 'string' },
  subscriber: { type: 'string', multiple: true },
  message: { type: 'string' },
  instance: { type: 'string' },
  server: { type: 'string' },
  count: { type: 'string' },
  connect: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  // Aphlict's aphlict_server.js flags: any value is truthy, as there.
  debug: { type: 'string' },
  test: { type: 'string' },
  'daemon-child': { type: 'boolean' },
} as const

const COMMANDS = new Set([
  'run',
  'debug',
  'start',
  'stop',
  'restart',
  'status',
  'reload',
  'test',
  'notify',
  'listen',
  // Internal: a worker process of a node with `processes` > 1 (started by the primary).
  'worker',
])

/** `tidings stop` waits longer than a drain can take (SIGKILL only if it hangs). */
function stopTimeout(config: Config): number {
  return config.drain.window + config.relay.flushTimeout + 10_000
}

/** Node's parseArgs message, in our words (its own has unbalanced quotes). */
function parseError(error: Error & { code?: string }): string {
  const option = /'(-[^']*)'/.exec(error.message)?.[1] ?? ''
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `Unknown option "${option}".`
  if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    return `Option "${option.split(/[ ,]/)[0]}" needs a value.`
  }
  if (error.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return 'Unexpected argument.'
  return error.message
}

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (error) {
    throw new UsageError(`${parseError(error as Error)} Run \`tidings --help\` for usage.`)
  }
}

function logFormat(value: string): 'text' | 'json' {
  if (value !== 'text' && value !== 'json') {
    throw new UsageError(`--log-format must be "text" or "json", got "${value}".`)
  }
  return value
}

/** The URL of the config's first server of a type, as a client on this host reaches it. */
function serverUrl(config: Config, type: 'admin' | 'client'): string {
  const server = config.servers.find((entry) => entry.type === type)
  const listen = server?.listen
  const host =
    !listen || listen === '0.0.0.0' ? '127.0.0.1' : listen === '::' ? '::1' : (listen as string)
  const tls = Boolean(server?.['ssl.key'])
  const scheme = type === 'admin' ? (tls ? 'https' : 'http') : tls ? 'wss' : 'ws'
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${server?.port}`
}

function positiveInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const number = Number(value)
  if (!Number.isInteger(number) || number < 1) {
    throw new UsageError(`--${name} must be a whole number of at least 1, got "${value}".`)
  }
  return number
}

async function dispatch(argv: string[], print: (line: string) => void): Promise<number> {
  const { values, positionals } = parse(argv)
  if (positionals.length > 1) throw new UsageError(`Unexpected argument "${positionals[1]}".`)
  let command = positionals[0] ?? (values.test ? 'test' : values.debug ? 'debug' : 'run')
  if (!COMMANDS.has(command)) {
    throw new UsageError(`Unknown command "${command}". Run \`tidings --help\` for usage.`)
  }
  if (values.help) {
    print(HELP[positionals[0] ? command : 'main'] as string)
    return 0
  }
  if (command === 'worker') return (await import('./worker-main.ts')).runWorker()
  const format = logFormat(values['log-format'])
  const loaded = loadConfig(values.config)
  const { config } = loaded
  const timeout =
    values.timeout === undefined
      ? command === 'reload'
        ? 5000
        : stopTimeout(config)
      : Number(values.timeout)
  if (!Number.isFinite(timeout) || timeout < 0)
    throw new UsageError('--timeout must be a number of milliseconds.')

  const daemon = (): Promise<typeof import('./daemon.ts')> => import('./daemon.ts')
  switch (command) {
    case 'test':
      await (await import('./listen.ts')).checkListenHosts(config.servers)
      if (values.connect) {
        const reached = await (await import('./backplane-check.ts')).checkBackplane(config)
        print(reached)
      }
      print('Configuration test OK.')
      return 0
    case 'start':
      return (await daemon()).startDaemon({
        config,
        configPath: loaded.path,
        logFormat: format,
        print,
      })
    case 'stop':
      return (await daemon()).stopDaemon(config, timeout, print)
    case 'restart': {
      const { restartDaemon, startDaemon } = await daemon()
      const restarted = await restartDaemon(config, print)
      if (restarted !== undefined) return restarted
      return startDaemon({ config, configPath: loaded.path, logFormat: format, print })
    }
    case 'status':
      return (await daemon()).daemonStatus(config, serverUrl(config, 'admin'), print)
    case 'reload':
      return (await daemon()).reloadDaemon(config, timeout, print)
    case 'notify':
      return (await import('./notify.ts')).notify({
        adminUrl: serverUrl(config, 'admin'),
        subscribers: values.subscriber ?? [],
        message: values.message,
        instance: values.instance,
        secret: config.secret ?? undefined,
        print,
      })
    case 'listen':
      return (await import('./subscriber.ts')).listen({
        server: values.server ?? serverUrl(config, 'client'),
        subscribers: values.subscriber ?? [],
        instance: values.instance,
        count: positiveInteger('count', values.count),
        print,
        note: (line) => process.stderr.write(`${line}\n`),
      })
    default: {
      if (command === 'run' && values.debug) command = 'debug'
      const child = values['daemon-child'] === true
      const { run } = await import('./run.ts')
      const { server, stopped } = await run({
        config,
        trace: command === 'debug',
        format,
        console: !child,
        pidfile: child ? config.pidfile : undefined,
        configPath: loaded.path,
      })
      if (child) {
        process.send?.({ ready: true })
        // `tidings start` closes our stderr once it has this: never write to it again.
        ;(await import('./logger.ts')).detachStderr()
        // Started by a restart: the predecessor gets our messages while it drains.
        ;(await import('./handover.ts')).followPredecessor(server)
      }
      return stopped
    }
  }
}

/** Runs the CLI; resolves to the process exit status. User mistakes never print a stack. */
export async function main(argv: string[]): Promise<number> {
  const print = (line: string): void => {
    process.stdout.write(`${line}\n`)
  }
  try {
    return await dispatch(argv, print)
  } catch (error) {
    if (
      error instanceof ConfigError ||
      error instanceof StartupError ||
      error instanceof UsageError
    ) {
      process.stderr.write(`tidings: ${error.message}\n`)
      return error instanceof UsageError ? 2 : 1
    }
    throw error
  }
}
