/**
 * Running a server in this process until a signal: the foreground modes (`tidings`,
 * `tidings debug`, `--config=…`) and the daemon child of `tidings start`.
 * SIGTERM drains (sockets closed with 4000 in waves over `drain.window`, then exit 0);
 * SIGINT closes at once (1001); a second SIGTERM/SIGINT exits 1 immediately;
 * SIGHUP re-reads the configuration file (see reload.ts) and reopens the log files;
 * SIGUSR2 restarts without refusing a connection (see handover.ts).
 */
import type { Config } from '../../src/config/schema.ts'
import { loadConfig } from './config-file.ts'
import { handOver } from './handover.ts'
import { type LogFormat, NodeLogger } from './logger.ts'
import { removePid, writePid } from './pidfile.ts'
import { formatReport, type ReloadReport, removeReport, reportPath, writeReport } from './reload.ts'
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
  /** The file SIGHUP re-reads; undefined for the embedded default. */
  configPath?: string | undefined
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
  let running: RunningServer | undefined
  // Installed before start-up, so an early SIGHUP (logrotate, `tidings reload`) cannot kill us.
  const onHangup = (): void => {
    if (running) reload(running)
    else logger.log('Caught SIGHUP during start-up; nothing to reload yet.')
  }
  process.on('SIGHUP', onHangup)
  let server: RunningServer
  try {
    server = await startServer({ config: options.config, logger, inheritSockets: true })
    running = server
  } catch (error) {
    process.off('SIGHUP', onHangup)
    await logger.close()
    throw error
  }
  if (options.pidfile) {
    try {
      writePid(options.pidfile, process.pid)
    } catch (error) {
      await server.close(1000)
      await logger.close()
      throw error
    }
  }

  process.on('uncaughtException', (error) => {
    logger.log(`\n<<< UNCAUGHT EXCEPTION! >>>\n\n${error.stack ?? String(error)}`)
  })

  function reload(server: RunningServer): void {
    const at = Date.now()
    const source = options.configPath ? `"${options.configPath}"` : 'the embedded default'
    // Said before the log files are reopened, so the old file records that they moved.
    logger.log(`Caught SIGHUP, reloading the configuration from ${source}.`)
    let report: ReloadReport
    try {
      const next = loadConfig(options.configPath).config
      const changes = server.reconfigure(next, { setLogs: (paths) => logger.reopen(paths) })
      report = { at, ok: true, source, ...changes }
    } catch (error) {
      logger.reopen(options.config.logs.map((log) => log.path))
      report = {
        at,
        ok: false,
        source,
        applied: [],
        restartNeeded: [],
        error: (error as Error).message,
      }
    }
    logger.log(formatReport(report))
    if (options.pidfile) {
      try {
        writeReport(reportPath(options.pidfile), report)
      } catch (error) {
        logger.warn(`Cannot write the reload report: ${(error as Error).message}`)
      }
    }
  }

  const stopped = new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // A second signal means "now".
        process.exit(1)
      }
      stopping = true
      const { config } = server.node
      const lone = config.cluster.length === 0 && !config.backplane
      const graceful = signal === 'SIGTERM' && !(lone && config.drain.lone === 'close')
      logger.log(
        graceful
          ? `Caught ${signal}, draining connections.`
          : signal === 'SIGTERM'
            ? `Caught ${signal}; a lone node (no cluster peers, no backplane) has nowhere to send its clients, so it closes them now ("drain.lone").`
            : `Caught ${signal}, closing connections.`
      )
      const done = graceful ? server.drain() : server.close(options.shutdownTimeout ?? 5000)
      done
        .then(async () => {
          logger.log('Stopped.')
          if (options.pidfile) {
            removeReport(reportPath(options.pidfile))
            removePid(options.pidfile, process.pid)
          }
          await logger.close()
          resolve(0)
        })
        .catch(() => resolve(1))
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
    // A restart that refuses nothing: a new process takes over the listening sockets.
    process.on('SIGUSR2', () => {
      if (stopping) return
      stopping = true
      handOver({
        server,
        logger,
        configPath: options.configPath,
        format: options.format,
        trace: options.trace,
      }).then(
        async (handedOver) => {
          if (!handedOver) {
            stopping = false
            return
          }
          logger.log('Stopped; the new process serves.')
          if (options.pidfile) removePid(options.pidfile, process.pid)
          await logger.close()
          resolve(0)
        },
        () => resolve(1)
      )
    })
  })
  return { server, stopped }
}
