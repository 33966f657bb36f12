/** Messages between scripts/soak.ts and its fleet shards (scripts/hardening/soak-fleet.ts). */

/** A message the publisher got a 200 for: posted at pStart, answered at pEnd (ms). */
export interface Announcement {
  seq: number
  subscribers: string[]
  pStart: number
  pEnd: number
}

export type FleetCommand =
  | {
      type: 'start'
      url: string
      connections: number
      users: number
      objects: number
      churnPerSecond: number
      resubscribePerSecond: number
      seed: number
      /** How long after pEnd a message must have arrived. */
      deadlineMs: number
    }
  | { type: 'announce'; messages: Announcement[] }
  | { type: 'stats'; id: number }
  | { type: 'stop' }

export interface FleetStats {
  open: number
  opened: number
  churned: number
  resubscribed: number
  received: number
  evaluated: number
  /** Deliveries the checked messages owed to this shard's clients. */
  expected: number
  missing: number
  duplicates: number
  unexpectedCloses: number
  connectErrors: number
  missingSamples: string[]
}

/** Stats with every count at zero: a shard's start, and the base a sum adds into. */
export function emptyFleetStats(): FleetStats {
  return {
    open: 0,
    opened: 0,
    churned: 0,
    resubscribed: 0,
    received: 0,
    evaluated: 0,
    expected: 0,
    missing: 0,
    duplicates: 0,
    unexpectedCloses: 0,
    connectErrors: 0,
    missingSamples: [],
  }
}

export type FleetReply =
  | { type: 'stats'; id: number; stats: FleetStats }
  | { type: 'stopped'; stats: FleetStats }
