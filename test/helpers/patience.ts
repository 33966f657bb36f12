/**
 * How long a test waits, derived from what it waits for, so the suite holds on a busy 2-core
 * machine. A wait for something that will happen costs nothing when it happens early, so it
 * is bounded by the point where waiting longer means nothing; a wait asserting that something
 * does NOT happen (silence) stays short, since a slow machine can only make it pass.
 */
import { configSchema } from '../../src/config/schema.ts'

const defaults = configSchema.parse({ servers: [] })

/**
 * A WebSocket (or raw upgrade) handshake: the server itself gives one this long
 * (`limits.handshakeTimeout`) before it closes the socket, so a client waiting longer
 * would only be told no.
 */
export const HANDSHAKE_MS = defaults.limits.handshakeTimeout

/**
 * A frame, receipt or state the server already owes (a pong, a delivery of a POST answered
 * 200, a counter settling). On loopback that is a few event-loop turns, but a busy machine
 * stalls turns by seconds (a fixed 3 s wait failed on a loaded CI host). The bound is the
 * handshake's: the server holds no exchange with a client longer than that either.
 */
export const OWED_MS = HANDSHAKE_MS

/** A quiet period that must pass with nothing arriving. */
export const SILENCE_MS = 200
