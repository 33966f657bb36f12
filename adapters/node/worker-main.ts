/**
 * A worker process of a node with `processes` > 1 (`tidings worker`, started by the
 * primary; see worker-pool.ts). It holds client sockets the primary accepted and hands it:
 * a node of its own with no admin port, no relay and no backplane, fed every message by the
 * primary, asking the primary for replays (the primary's history is the node's). It stops
 * when the primary says so, or when the primary is gone.
 */
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { getRequestListener } from '@hono/node-server'
import type { Config } from '../../src/config/schema.ts'
import type { Connection } from '../../src/hub/connection.ts'
import type { SharedHistory } from '../../src/hub/hub.ts'
import { outboundFromBytes } from '../../src/hub/outbound.ts'
import { createNode, type InterestChange, type TidingsNode } from '../../src/node/node.ts'
import { workerReport } from '../../src/node/workers.ts'
import type { Outbound } from '../../src/ports.ts'
import { createClientPort } from './client-port.ts'
import { descriptorCeiling } from './descriptors.ts'
import { type ToPrimary, type ToWorker, unmirrored } from './ipc.ts'
import { Lifecycle } from './lifecycle.ts'
import { createEntryServer } from './listen.ts'
import { NodeLogger } from './logger.ts'
import { RuntimeMetrics } from './runtime-metrics.ts'

const send = (message: ToPrimary): void => {
  if (process.connected) process.send?.(message)
}

/** What a worker's node takes of the node's configuration: sockets only, no history of its own. */
function workerConfig(config: Config): Config {
  return {
    ...config,
    cluster: [],
    backplane: null,
    history: { ...config.history, size: 0 },
  }
}

/** Replays, answered by the primary. */
class PrimaryHistory implements SharedHistory {
  #request = 0
  readonly #waiting = new Map<number, (messages: Outbound[] | undefined) => void>()

  /** `budget`: the output one socket may have waiting (`limits.slowConsumerBytes`), live. */
  constructor(private readonly budget: () => number) {}

  replay(connection: Connection, since: number, requestedAt: number) {
    const request = ++this.#request
    // The primary sends no more than the socket could take now: what its budget leaves.
    const room = Math.max(0, this.budget() - connection.socket.pending)
    return new Promise<readonly Outbound[] | undefined>((resolve) => {
      this.#waiting.set(request, resolve)
      send({
        t: 'replay',
        request,
        instance: connection.instance.name,
        subscribers: [...connection.subs],
        since,
        requestedAt,
        room,
      })
    })
  }

  answered(request: number, messages: Uint8Array[] | undefined): void {
    const resolve = this.#waiting.get(request)
    this.#waiting.delete(request)
    resolve?.(messages?.map((bytes) => outboundFromBytes(bytes)))
  }
}

/**
 * Tells the primary which instances this worker's sockets are on (the primary keeps those
 * instances and their counters) and, with a backplane routing by subscriber, which ids they
 * need (see TidingsNode.follow): a turn's changes in one message.
 */
function followSockets(node: TidingsNode, routing: 'instance' | 'subscriber' | undefined): void {
  let changes: InterestChange[] = []
  const follow = (change: InterestChange): void => {
    if (changes.push(change) > 1) return
    // Before the hub serves this turn's replays (also deferred): the primary hears of a
    // subscription before a replay that needs it.
    setImmediate(() => {
      const batch = changes
      changes = []
      send({ t: 'follow', changes: batch })
    })
  }
  node.events.on('connected', ({ connection }) =>
    follow({ instance: connection.instance.name, present: true })
  )
  node.events.on('disconnected', ({ connection }) =>
    follow({ instance: connection.instance.name, present: false })
  )
  if (routing === 'subscriber') {
    node.events.on('interest', ({ instance, id, present }) =>
      follow({ instance: instance.name, id, present })
    )
  }
}

export async function runWorker(): Promise<number> {
  const init = await new Promise<Extract<ToWorker, { t: 'init' }>>((resolve) => {
    process.once('message', (message: ToWorker) => {
      if (message.t === 'init') resolve(message)
    })
  })
  // A send to a primary that has just gone fails with EPIPE; 'disconnect' ends this worker.
  process.on('error', () => {})
  // Ctrl-C reaches the whole process group: the primary decides when workers stop.
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => {})
  const config = workerConfig(init.config)
  const logger = new NodeLogger({
    paths: config.logs.map((log) => log.path),
    trace: init.trace,
    format: 'text',
  })
  const runtime = new RuntimeMetrics()
  const node: TidingsNode = createNode({
    config,
    clock: { now: () => Date.now() },
    logger,
    scheduler: { defer: (task) => setImmediate(task) },
    relays: false,
    runtime: {
      ceiling: descriptorCeiling(),
      families: () => runtime.families(),
      summary: () => runtime.summary(),
    },
  })
  const history = new PrimaryHistory(() => node.config.limits.slowConsumerBytes)
  node.tidings.hub.useSharedHistory(history)
  followSockets(node, init.follow)
  const port = createClientPort(node, config, logger)
  const listener = getRequestListener(node.clientHttp.fetch)
  const servers = new Map<number, Server>()
  const entries = config.servers.flatMap((entry, index) => {
    if (entry.type !== 'client') return []
    const server = createEntryServer(entry, index, listener)
    server.on('connection', port.onConnection)
    server.on('upgrade', port.onUpgrade)
    servers.set(index, server)
    return [{ server, entry, index }]
  })
  node.state.listening = true
  const lifecycle = new Lifecycle(node, entries, port, runtime)

  const done = new Promise<number>((resolve) => {
    const stop = (how: Promise<void>): void => {
      how.then(
        async () => {
          await logger.close()
          resolve(0)
        },
        () => resolve(1)
      )
    }
    // The primary is gone (killed): nothing will feed these sockets any more.
    process.once('disconnect', () => stop(lifecycle.close(1000)))
    process.on('message', (message: ToWorker, handle?: Socket) => {
      switch (message.t) {
        case 'socket': {
          const server = servers.get(message.server)
          if (!handle) return
          if (!server) {
            handle.destroy()
            return
          }
          server.emit('connection', handle)
          handle.resume()
          return
        }
        case 'message': {
          const { message: outbound, extras } = unmirrored(message)
          node.tidings.hub.publish(message.instance, message.subscribers, outbound, extras)
          return
        }
        case 'ping':
          send({ t: 'pong' })
          return
        case 'replayed':
          history.answered(message.request, message.messages)
          return
        case 'report':
          send({
            t: 'report',
            request: message.request,
            report: workerReport(
              node.tidings,
              init.worker,
              process.pid,
              {
                held: node.admission.held,
                handshaking: node.admission.handshaking,
                ceiling: node.admission.ceiling,
              },
              runtime.summary()
            ),
          })
          return
        case 'reload':
          lifecycle.reconfigure(workerConfig(message.config), {
            setLogs: (paths) => logger.reopen(paths),
          })
          return
        case 'drain':
          stop(
            lifecycle.drain({ windowMs: message.windowMs, waves: message.waves }).then(() => {
              send({ t: 'drained' })
            })
          )
          return
        case 'close':
          stop(lifecycle.close(1000))
          return
      }
    })
  })
  send({ t: 'ready' })
  return done
}
