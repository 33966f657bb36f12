/**
 * A restart that refuses nothing (`tidings restart`, SIGUSR2): the running process starts
 * its successor with its listening sockets (TIDINGS_LISTEN_FDS), so both accept on the same
 * sockets for a moment and no connection attempt finds nothing listening. Once the successor
 * is ready, this process stops accepting, takes the successor's messages for the sockets it
 * still holds (each once), drains them — clients reconnect to the successor — and exits.
 * The successor writes the pidfile.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import type { Logger, Outbound } from '../../src/ports.ts'
import type { Mirror } from '../../src/tidings.ts'
import { type Mirrored, mirrored, unmirrored } from './ipc.ts'
import { HANDOVER_FDS } from './listen.ts'
import type { RunningServer } from './server.ts'
import { workerEntry } from './worker-entry.ts'

/** Set for a successor: it forwards what it delivers to its predecessor while that drains. */
const SUCCESSOR = 'TIDINGS_HANDOVER'
/** How long a successor may take to be ready before the handover is given up. */
const READY_MS = 30_000

/** A message the successor delivered, for the predecessor's remaining sockets. */
type Handed = { t: 'handover-message' } & Mirrored

export interface HandoverOptions {
  server: RunningServer
  logger: Logger
  configPath: string | undefined
  format: 'text' | 'json'
  trace: boolean
}

/** Starts the successor and resolves once it listens (rejects, and kills it, when it fails). */
function startSuccessor(options: HandoverOptions): Promise<ChildProcess> {
  const fds = options.server.listeningFds()
  const args = [
    ...process.execArgv,
    workerEntry(),
    options.trace ? 'debug' : 'run',
    ...(options.configPath ? ['--config', options.configPath] : []),
    '--log-format',
    options.format,
    '--daemon-child',
  ]
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', ...fds, 'ipc'],
    serialization: 'advanced',
    env: {
      ...process.env,
      [HANDOVER_FDS]: fds.map((_, i) => 3 + i).join(','),
      [SUCCESSOR]: String(process.pid),
    },
  })
  child.on('error', () => {})
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the new process was not ready within ${READY_MS} ms`))
    }, READY_MS)
    child.on('message', function ready(message: { ready?: boolean }) {
      if (!message?.ready) return
      clearTimeout(timer)
      child.off('message', ready)
      resolve(child)
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`the new process exited (${signal ?? `code ${code}`}) before it was ready`))
    })
  })
}

/**
 * Hands this process's sockets over to a new one. Resolves when this process has drained
 * and may exit (true), or false when the successor failed and this process goes on serving.
 */
export async function handOver(options: HandoverOptions): Promise<boolean> {
  const { server, logger } = options
  logger.log('Restarting: starting a new process on the same listening sockets.')
  let successor: ChildProcess
  try {
    successor = await startSuccessor(options)
  } catch (error) {
    logger.warn(`Restart abandoned, still serving: ${(error as Error).message}.`)
    return false
  }
  logger.log(
    `The new process (pid ${successor.pid}) is listening; this one stops accepting and drains its sockets.`
  )
  server.node.state.handingOver = true
  server.stopAccepting()
  const { tidings } = server.node
  successor.on('message', (message: Handed) => {
    if (message?.t !== 'handover-message') return
    const { message: outbound, extras } = unmirrored(message)
    tidings.deliverMirrored(message.instance, message.subscribers, outbound, extras)
  })
  await server.drain()
  successor.disconnect()
  successor.unref()
  return true
}

/**
 * In a successor: until the predecessor has drained (it disconnects), every message this
 * process delivers also goes to it, for the sockets it still holds.
 */
export function followPredecessor(server: RunningServer): void {
  if (!process.env[SUCCESSOR]) return
  delete process.env[SUCCESSOR]
  if (!process.connected) return
  const { mirrors } = server.node.tidings
  const mirror: Mirror = {
    deliver(instance, subscribers, message: Outbound, extras) {
      if (!process.connected) return
      const handed: Handed = {
        t: 'handover-message',
        ...mirrored(instance, subscribers, message, extras),
      }
      process.send?.(handed)
    },
  }
  mirrors.push(mirror)
  process.on('error', () => {})
  process.once('disconnect', () => {
    const at = mirrors.indexOf(mirror)
    if (at >= 0) mirrors.splice(at, 1)
  })
}
