/** The command line's help texts, and its usage error. */

/** A mistake on the command line; printed without a stack trace, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** `tidings --help` and `tidings <command> --help`. */
export const HELP: Record<string, string> = {
  main: `Usage: tidings [command] [--config FILE] [options]

An Aphlict-compatible real-time notification relay.

Commands:
  run        Run in the foreground, logging to the console (the default)
  debug      Run in the foreground with trace logging
  start      Start in the background; writes the pidfile
  stop       Drain and stop the background server (SIGTERM, then SIGKILL after --timeout)
  restart    stop, then start
  reload     Re-read the configuration file in the background server (SIGHUP)
  status     Check the background server is alive and answering /status/
  test       Validate the configuration and exit; binds nothing
  notify     Post a test notification to the configured admin server
  listen     Subscribe to ids and print the messages that arrive

Options:
  --config FILE         Aphlict-style JSON config (default: the embedded one:
                        client on 0.0.0.0:22280, admin on 127.0.0.1:22281)
  --log-format FORMAT   text (default) or json
  -h, --help            Help for a command: tidings <command> --help

Aphlict's own flags are accepted too: --config=FILE, --debug=1, --test=true.`,
  run: `Usage: tidings run [--config FILE] [--log-format text|json]

Runs the server in the foreground. SIGTERM drains: new sockets are refused,
/readyz answers 503, open sockets are closed with 4000 in random waves over
drain.window ms, queued relays go out, then it exits 0. SIGINT (Ctrl-C) closes
every socket with 1001 at once. SIGHUP re-reads the configuration file.`,
  debug: `Usage: tidings debug [--config FILE] [--log-format text|json]

Like run, with trace logging (every connection, frame and delivery).`,
  start: `Usage: tidings start [--config FILE] [--log-format text|json]

Starts the server in the background and returns once it is listening. Refuses
to start when the pidfile names a live process; a stale pidfile is replaced.`,
  stop: `Usage: tidings stop [--config FILE] [--timeout MS]

Sends SIGTERM to the server in the pidfile, which drains its sockets over
drain.window ms (close code 4000) and exits. Waits up to --timeout ms (default:
drain.window + relay.flushTimeout + 10000) for it to exit, then sends SIGKILL.`,
  reload: `Usage: tidings reload [--config FILE] [--timeout MS]

Checks the configuration file, sends SIGHUP to the server in the pidfile and
prints what it applied (logs, limits, history, websocket.heartbeat, relay tuning,
drain) and what needs a restart (servers, cluster, secret, ...). Exits 1 if the
server rejected the file or did not answer within --timeout ms (default 5000).`,
  restart: `Usage: tidings restart [--config FILE]

Restarts the background server without refusing a connection: it starts a new
process on the same listening sockets (signal SIGUSR2), which takes over once it
is ready; the old one stops accepting, drains its sockets (4000, in waves over
drain.window) and exits. Returns when the new process answers /status/. Starts
the server when it is not running.`,
  status: `Usage: tidings status [--config FILE]

Exits 0 when the server in the pidfile is alive and its admin server answers
/status/ (printed), 1 otherwise.`,
  test: `Usage: tidings test [--config FILE] [--connect]

Validates the configuration, prints "Configuration test OK." and exits 0. With
--connect, also connects to the configured backplane (Redis) and says whether it
can be used, binding nothing.`,
  listen: `Usage: tidings listen --subscriber ID [--subscriber ID...] [--instance NAME] [--server URL] [--count N] [--config FILE]

Connects to a client server (--server ws://host:port, default: the first client
server in the config), subscribes to the ids and prints each message that
arrives as one line of JSON. Exits after --count messages, or on Ctrl-C.`,
  notify: `Usage: tidings notify --subscriber ID [--subscriber ID...] [--message TEXT] [--instance NAME] [--config FILE]

Posts {"type":"notification", ...} to the first admin server in the config.`,
}
