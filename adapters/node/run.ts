/**
 * Running a server in this process until SIGTERM/SIGINT: the foreground modes
 * (`tidings`, `tidings debug`, `--config=…`) and the daemon child of `tidings start`.
 */
import type { Config } from '../../src/config/schema.ts'
import { type LogFormat, NodeLogger } from './logger.ts'
import { removePid, writePid } from './pidfile.ts'
import { type RunningServer, startServer } from './server.ts'

export interface RunOptions {
  config: Config
  trace: boolean
  format: LogFormat
  /** Echo log lines to stdout (foreground). */
  console: boolean
  /** Write this pidfile once listening, remove it on exit (daemon child). */
  pidfile?: string | undefined
  /** Milliseconds to wait for sockets to close on shutdown. */
  shutdownTimeout?: number
}

/** Starts the server and resolves once it is listening; `stopped` settles after a signal. */
export async function run(
  options: RunOptions
): Promise<{ server: RunningServer; stopped: Promise<number> }> {
  const logger = new NodeLogger({
    paths: options.config.logs.map((log) => log.path),
    trace: options.trace,
    format: options.format,
    console: options.console ? (line) => process.stdout.write(`${line}\n`) : undefined,
  })
  for (const log of options.config.logs) logger.log(`Logging to "${log.path}".`)
  let server: RunningServer
  try {
    server = await startServer({ config: options.config, logger })
  } catch (error) {
    await logger.close()
    throw error
  }
  if (options.pidfile) writePid(options.pidfile, process.pid)

  process.on('uncaughtException', (error) => {
    logger.log(`\n<<< UNCAUGHT EXCEPTION! >>>\n\n${error.stack ?? String(error)}`)
  })

  const stopped = new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // A second signal means "now".
        process.exit(1)
      }
      stopping = true
      logger.log(`Caught ${signal}, closing connections.`)
      server
        .close(options.shutdownTimeout ?? 5000)
        .then(async () => {
          logger.log('Stopped.')
          if (options.pidfile) removePid(options.pidfile, process.pid)
          await logger.close()
          resolve(0)
        })
        .catch(() => resolve(1))
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
  return { server, stopped }
}
