/**
 * The `tidings` command line. Subcommands follow Aphlict's `bin/aphlict`; the original Node
 * server's own flags (`--config=FILE`, `--debug=1`, `--test=true`) work too.
 */
import { parseArgs } from 'node:util'
import { ConfigError } from '../../src/errors.ts'
import { loadConfig } from './config-file.ts'
import { daemonStatus, reloadDaemon, startDaemon, stopDaemon } from './daemon.ts'
import { StartupError } from './listen.ts'
import { detachStderr } from './logger.ts'
import { notify } from './notify.ts'
import { run } from './run.ts'
import { HELP, UsageError } from './usage.ts'

const OPTIONS = {
  config: { type: 'string' },
  'log-format': { type: 'string', default: 'text' },
  timeout: { type: 'string' },
  subscriber: { type: 'string', multiple: true },
  message: { type: 'string' },
  instance: { type: 'string' },
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
])

/** `tidings stop` waits longer than a drain can take (SIGKILL only if it hangs). */
function stopTimeout(config: ReturnType<typeof loadConfig>['config']): number {
  return config.drain.window + config.relay.flushTimeout + 10_000
}

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\nRun \`tidings --help\` for usage.`)
  }
}

function logFormat(value: string): 'text' | 'json' {
  if (value !== 'text' && value !== 'json') {
    throw new UsageError(`--log-format must be "text" or "json", got "${value}".`)
  }
  return value
}

function adminUrl(config: ReturnType<typeof loadConfig>['config']): string {
  const admin = config.servers.find((server) => server.type === 'admin')
  const host = !admin?.listen || admin.listen === '0.0.0.0' ? '127.0.0.1' : admin.listen
  const scheme = admin?.['ssl.key'] ? 'https' : 'http'
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${admin?.port}`
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

  switch (command) {
    case 'test':
      print('Configuration test OK.')
      return 0
    case 'start':
      return startDaemon({ config, configPath: loaded.path, logFormat: format, print })
    case 'stop':
      return stopDaemon(config, timeout, print)
    case 'restart': {
      await stopDaemon(config, timeout, print)
      return startDaemon({ config, configPath: loaded.path, logFormat: format, print })
    }
    case 'status':
      return daemonStatus(config, adminUrl(config), print)
    case 'reload':
      return reloadDaemon(config, timeout, print)
    case 'notify':
      return notify({
        adminUrl: adminUrl(config),
        subscribers: values.subscriber ?? [],
        message: values.message,
        instance: values.instance,
        secret: config.secret ?? undefined,
        print,
      })
    default: {
      if (command === 'run' && values.debug) command = 'debug'
      const child = values['daemon-child'] === true
      const { stopped } = await run({
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
        detachStderr()
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
