/**
 * Client → server frames: `{"command": "subscribe"|"unsubscribe"|"replay"|"ping", "data": …}`.
 * Anything malformed is ignored (traced) and the connection keeps working, unlike Aphlict,
 * where a `null` frame or a missing `data` threw inside ws and left the socket deaf.
 */
import { CLOSE_POLICY, CLOSE_REASONS, type PolicyLimit } from '../close-codes.ts'
import type { Connection } from '../hub/connection.ts'
import type { Hub } from '../hub/hub.ts'
import { PONG } from '../hub/outbound.ts'
import type { LimitStats } from '../limit-stats.ts'
import type { LogLimiter } from '../log-limiter.ts'
import type { Clock } from '../ports.ts'
import { utf8Length } from '../util/utf8.ts'
import { takeToken } from './token-bucket.ts'

export interface FrameContext {
  hub: Hub
  log: LogLimiter
  clock: Clock
  /** Where closes for a broken limit are counted. */
  limited: LimitStats
  /** Longest replay window, ms (the history age). Read on every replay. */
  readonly replayWindow: number
  /** Frames per second one connection may send (0: no limit). Read on every frame. */
  readonly framesPerSecond: number
  /** Counts frames that were ignored as malformed. */
  onBadFrame(): void
}

/** True when a frame (text, or its bytes) is larger than `limit` bytes of UTF-8. */
export function exceedsFrameBytes(data: string | Uint8Array | ArrayBuffer, limit: number): boolean {
  if (typeof data !== 'string') return data.byteLength > limit
  // UTF-8 takes at least one byte and at most three per UTF-16 unit.
  if (data.length > limit) return true
  if (data.length * 3 <= limit) return false
  return utf8Length(data) > limit
}

/** Aphlict replays 60 s when `age` is missing or 0; the browser never sends 0. */
const DEFAULT_REPLAY_AGE = 60_000

/** Subscription ids from `data`: an array of strings or finite numbers (as strings). */
function readIds(data: unknown): string[] | undefined {
  if (!Array.isArray(data)) return undefined
  const ids: string[] = []
  for (const item of data) {
    if (typeof item === 'string') ids.push(item)
    else if (typeof item === 'number' && Number.isFinite(item)) ids.push(String(item))
    else return undefined
  }
  return ids
}

function readReplayAge(data: unknown, window: number): number | undefined {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined
  const age = (data as { age?: unknown }).age
  if (age === undefined || age === 0) return Math.min(DEFAULT_REPLAY_AGE, window)
  if (typeof age !== 'number' || !Number.isFinite(age) || age < 0) return undefined
  return Math.min(age, window)
}

function ignore(ctx: FrameContext, connection: Connection, why: string): void {
  ctx.onBadFrame()
  const { logger } = ctx.log
  if (logger.tracing) logger.trace(`${connection.label} Ignored frame: ${why}`)
}

const LIMIT_TEXT: Record<PolicyLimit, string> = {
  subscriptionsPerConnection: 'more subscriptions than "limits.subscriptionsPerConnection"',
  subscriptionBytes: 'more bytes of subscription ids than "limits.subscriptionBytes"',
  idBytes: 'a subscription id longer than "limits.idBytes"',
  framesPerSecond: 'more frames per second than "limits.framesPerSecond"',
}

function closeForLimit(ctx: FrameContext, connection: Connection, limit: PolicyLimit): void {
  ctx.limited[limit]++
  ctx.log.log(`close:${limit}`, `${connection.label} Closed with 1008: ${LIMIT_TEXT[limit]}.`)
  ctx.hub.disconnect(connection)
  connection.socket.close(CLOSE_POLICY, CLOSE_REASONS[limit])
}

/** Handles one text frame. Never throws. */
export function handleFrame(ctx: FrameContext, connection: Connection, text: string): void {
  if (!connection.open) return
  if (!takeToken(connection.frameBucket, ctx.clock.now(), ctx.framesPerSecond)) {
    closeForLimit(ctx, connection, 'framesPerSecond')
    return
  }
  const { logger } = ctx.log
  if (logger.tracing) logger.trace(`${connection.label} Received message: ${text}`)
  let frame: unknown
  try {
    frame = JSON.parse(text)
  } catch (error) {
    ignore(ctx, connection, `Message is invalid: ${(error as Error).message}`)
    return
  }
  if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
    ignore(ctx, connection, 'not a JSON object')
    return
  }
  const { command, data } = frame as { command?: unknown; data?: unknown }
  switch (command) {
    case 'ping':
      // A client that does not read must not grow its output by pinging.
      if (ctx.hub.output.admit(connection, PONG.bytes.byteLength)) {
        connection.socket.sendMessage(PONG)
      }
      return
    case 'subscribe':
    case 'unsubscribe': {
      const ids = readIds(data)
      if (!ids) {
        ignore(ctx, connection, `"${command}" needs "data" to be a list of ids`)
        return
      }
      if (command === 'unsubscribe') {
        ctx.hub.unsubscribe(connection, ids)
      } else {
        const broken = ctx.hub.subscribe(connection, ids)
        if (broken) {
          closeForLimit(ctx, connection, broken)
          return
        }
      }
      if (logger.tracing) {
        const verb = command === 'subscribe' ? 'Subscribed to' : 'Unsubscribed from'
        logger.trace(`${connection.label} ${verb}: ${JSON.stringify(ids)}`)
      }
      return
    }
    case 'replay': {
      const age = readReplayAge(data, ctx.replayWindow)
      if (age === undefined) {
        ignore(ctx, connection, '"replay" needs "data" to be {"age": <ms>}')
        return
      }
      ctx.hub.requestReplay(connection, age)
      return
    }
    default:
      ignore(
        ctx,
        connection,
        `Unrecognized command "${typeof command === 'string' ? command : '<undefined>'}".`
      )
  }
}
