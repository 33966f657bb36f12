/**
 * `tidings listen`: a WebSocket subscriber on the command line. Connects to a client server,
 * subscribes to the given ids and prints each message as one line of JSON, as it arrives;
 * pings every 15 s, as browsers do. Exits after `--count` messages, or on Ctrl-C.
 */
import WebSocket from 'ws'
import { UsageError } from './usage.ts'

export interface ListenOptions {
  /** `ws://host:port` (or wss); the instance path is added. */
  server: string
  subscribers: string[]
  instance: string | undefined
  /** Stop after this many messages (undefined: run until interrupted). */
  count: number | undefined
  print: (line: string) => void
  /** Status lines (connected, closed) go here, apart from the messages. */
  note: (line: string) => void
}

const PING_MS = 15_000
const CONNECT_TIMEOUT_MS = 10_000

/** The URL to connect to: the server with `/~instance/` when one is named. */
export function listenUrl(server: string, instance: string | undefined): string {
  let url: URL
  try {
    url = new URL(server)
  } catch {
    throw new UsageError(`--server must be a ws:// or wss:// URL, got "${server}".`)
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new UsageError(`--server must be a ws:// or wss:// URL, got "${server}".`)
  }
  if (instance) url.pathname = `/~${encodeURIComponent(instance)}/`
  return url.href
}

export function listen(options: ListenOptions): Promise<number> {
  if (options.subscribers.length === 0) {
    throw new UsageError('Specify what to listen for with "--subscriber ID".')
  }
  const url = listenUrl(options.server, options.instance)
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    let received = 0
    let failed = false
    let pinger: NodeJS.Timeout | undefined
    const connecting = setTimeout(() => {
      options.note(`No connection to ${url} within ${CONNECT_TIMEOUT_MS} ms.`)
      ws.terminate()
    }, CONNECT_TIMEOUT_MS)
    const stop = (): void => ws.close(1000)
    process.once('SIGINT', stop)
    ws.on('open', () => {
      clearTimeout(connecting)
      ws.send(JSON.stringify({ command: 'subscribe', data: options.subscribers }))
      pinger = setInterval(() => ws.send('{"command":"ping","data":null}'), PING_MS)
      options.note(`Listening on ${url} for ${options.subscribers.join(', ')}.`)
    })
    ws.on('message', (data) => {
      const text = data.toString()
      if (text === '{"type":"pong"}') return
      options.print(text)
      received++
      if (options.count !== undefined && received >= options.count) ws.close(1000)
    })
    ws.on('error', (error) => {
      failed = true
      options.note(`Connection to ${url} failed: ${error.message}`)
    })
    ws.on('close', (code, reason) => {
      clearTimeout(connecting)
      if (pinger) clearInterval(pinger)
      process.off('SIGINT', stop)
      const done = options.count !== undefined && received >= options.count
      if (!done && !failed && code !== 1000) {
        options.note(`Closed by the server: ${code} ${reason.toString()}`.trimEnd())
      }
      resolve(done || code === 1000 ? 0 : 1)
    })
  })
}
