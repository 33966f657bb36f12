/**
 * Client → server frames: `{"command": "subscribe"|"unsubscribe"|"replay"|"ping", "data": …}`.
 * Anything malformed is ignored (traced) and the connection keeps working, unlike Aphlict,
 * where a `null` frame or a missing `data` threw inside ws and left the socket deaf.
 */
import { CLOSE_POLICY, CLOSE_SLOW_CONSUMER } from '../close-codes.ts'
import type { Connection } from '../hub/connection.ts'
import type { Hub } from '../hub/hub.ts'
import { PONG } from '../hub/outbound.ts'
import type { LimitStats } from '../limit-stats.ts'
import type { Clock, Logger } from '../ports.ts'
import { FRAME_RATE_REASON, takeFrame } from './rate-limit.ts'

export interface FrameContext {
  hub: Hub
  logger: Logger
  /** Longest replay window, ms (the history age). */
  replayWindow: number
  /** Counts frames that were ignored as malformed. */
  onBadFrame(): void
  /** Frames per second one connection may send (0 or absent: no limit); needs `clock`. */
  framesPerSecond?: number
  clock?: Clock
  /** Where closes for a broken limit are counted. */
  limited?: LimitStats
  /** A connection with more unsent bytes than this gets no pong or replay: it is closed with 4008. */
  slowConsumerBytes?: number
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
  if (ctx.logger.tracing) ctx.logger.trace(`${connection.label} Ignored frame: ${why}`)
}

function closeForLimit(
  ctx: FrameContext,
  connection: Connection,
  limit: 'subscriptions' | 'framesPerSecond',
  reason: string
): void {
  if (ctx.limited) ctx.limited[limit]++
  ctx.logger.log(`${connection.label} Closed: ${reason}.`)
  ctx.hub.disconnect(connection)
  connection.socket.close(CLOSE_POLICY, reason)
}

/**
 * True (and the connection closed with 4008) when it has more unsent data than allowed: a
 * client that does not read must not grow the server's write queue by sending pings or replays.
 */
function tooFarBehind(ctx: FrameContext, connection: Connection): boolean {
  const cap = ctx.slowConsumerBytes
  if (cap === undefined || connection.socket.bufferedAmount <= cap) return false
  ctx.hub.stats.slowConsumerCloses++
  ctx.logger.log(`${connection.label} Closed: too much unsent data (slow consumer).`)
  ctx.hub.disconnect(connection)
  connection.socket.close(CLOSE_SLOW_CONSUMER, 'slow consumer')
  return true
}

/** Handles one text frame. Never throws. */
export function handleFrame(ctx: FrameContext, connection: Connection, text: string): void {
  if (!connection.open) return
  const { framesPerSecond, clock } = ctx
  if (framesPerSecond && clock && !takeFrame(connection, clock.now(), framesPerSecond)) {
    closeForLimit(ctx, connection, 'framesPerSecond', FRAME_RATE_REASON)
    return
  }
  if (ctx.logger.tracing) ctx.logger.trace(`${connection.label} Received message: ${text}`)
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
      if (tooFarBehind(ctx, connection)) return
      connection.socket.sendMessage(PONG)
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
      } else if (!ctx.hub.subscribe(connection, ids)) {
        closeForLimit(ctx, connection, 'subscriptions', 'subscription limit exceeded')
        return
      }
      if (ctx.logger.tracing) {
        const verb = command === 'subscribe' ? 'Subscribed to' : 'Unsubscribed from'
        ctx.logger.trace(`${connection.label} ${verb}: ${JSON.stringify(ids)}`)
      }
      return
    }
    case 'replay': {
      const age = readReplayAge(data, ctx.replayWindow)
      if (age === undefined) {
        ignore(ctx, connection, '"replay" needs "data" to be {"age": <ms>}')
        return
      }
      if (tooFarBehind(ctx, connection)) return
      ctx.hub.replay(connection, age)
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
