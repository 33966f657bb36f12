/**
 * One snapshot of a node's figures: what `/stats.json` answers (the dashboard polls it) and
 * what `/metrics` renders. Read from the core's counters on demand; nothing is kept here.
 */
import type { BackplaneHealth } from '../backplane/status.ts'
import type { WorkerHealth } from '../node/workers.ts'
import { STATUS_VERSION, type Tidings } from '../tidings.ts'
import type { HistogramSnapshot } from './histogram.ts'

/** One cluster peer as the relay reports it. Adapters map the relay's view onto this. */
export interface PeerHealth {
  /** The peer's admin origin, e.g. `http://10.0.0.2:22281`. */
  readonly peer: string
  /** The relay's word for it, e.g. `up`, `down`, `probing`. */
  readonly state: string
  /** Whether messages currently reach it. */
  readonly up: boolean
  /** Consecutive failures. */
  readonly failures: number
  /** Messages waiting to be relayed. */
  readonly queueDepth: number
  readonly sent: number
  readonly failed: number
  readonly dropped: number
  /** Epoch ms of the last successful relay, or null. */
  readonly lastSuccess: number | null
  /** Relay round-trip times in seconds, when measured. */
  readonly latency?: HistogramSnapshot | undefined
}

/** Figures a runtime adds (event loop, memory), by name, for the dashboard. */
export type RuntimeSummary = Readonly<Record<string, number>>

export interface InstanceStats {
  name: string
  connections: number
  /** (connection, subscriber id) pairs. */
  subscriptions: number
  /** Distinct subscriber ids with at least one socket. */
  subscribedIds: number
  /** Connections ever accepted (Aphlict's `clients.total`). */
  accepted: number
  messagesIn: number
  messagesOut: number
  historySize: number
  historyBytes: number
}

export interface NodeStats {
  /** Epoch ms when this snapshot was taken. */
  time: number
  startedAt: number
  fingerprint: string
  version: number
  ready: boolean
  draining: boolean
  totals: {
    connections: number
    subscriptions: number
    messagesIn: number
    messagesOut: number
    deliveries: number
    replays: number
    replayedMessages: number
    slowConsumerCloses: number
    badFrames: number
    badBodies: number
    /** Messages dropped as already accepted (exactly-once across the cluster). */
    duplicates: number
    /** Messages dropped because they carried this node's own fingerprint. */
    loops: number
  }
  /** Refusals and closes per limit (Tidings.limited), e.g. `{ connectionsPerIp: 3 }`. */
  limited: Record<string, number>
  /** What remote parties make the process hold now, against the process-wide budgets. */
  budgets: {
    /** Client connections held (upgraded or not), and the ceiling (0: none). */
    connections: number
    connectionCeiling: number
    /** Client connections still upgrading. */
    handshakes: number
    /** Live instances. */
    instances: number
    /** Cost of all replay history (limits.historyBytes). */
    historyBytes: number
    /** Output waiting on sockets with more than a little waiting, as of the last check (limits.outputBytes). */
    outputBytes: number
  }
  instances: InstanceStats[]
  peers: PeerHealth[]
  /** The broker backplane, when one is configured. */
  backplane?: BackplaneHealth | undefined
  runtime: RuntimeSummary
  /** The worker processes of a node with `processes` > 1 (their figures are in the totals). */
  workers?: WorkerHealth[] | undefined
}

/** Where the figures come from besides the core itself. All optional. */
export interface StatsSources {
  /** Listening and not draining. Defaults to true. */
  ready?: () => boolean
  draining?: () => boolean
  /** At the client connection ceiling: new connections are refused. */
  atCapacity?: () => boolean
  /** Client connections held, still upgrading, and the ceiling (runtimes that see TCP). */
  connections?: () => { held: number; handshaking: number; ceiling: number }
  peers?: () => readonly PeerHealth[]
  backplane?: () => BackplaneHealth | undefined
  runtime?: () => RuntimeSummary
}

export function instanceStats(tidings: Tidings, now: number): InstanceStats[] {
  const list: InstanceStats[] = []
  for (const instance of tidings.hub.instances()) {
    instance.history.trim(now)
    let subscriptions = 0
    for (const sockets of instance.index.values()) subscriptions += sockets.size
    list.push({
      name: instance.name,
      connections: instance.active,
      subscriptions,
      subscribedIds: instance.index.size,
      accepted: instance.total,
      messagesIn: instance.messagesIn,
      messagesOut: instance.messagesOut,
      historySize: instance.history.size,
      historyBytes: instance.history.bytes,
    })
  }
  return list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

export function collectStats(tidings: Tidings, sources: StatsSources = {}): NodeStats {
  const now = tidings.options.clock.now()
  const instances = instanceStats(tidings, now)
  const sum = (pick: (instance: InstanceStats) => number): number =>
    instances.reduce((total, instance) => total + pick(instance), 0)
  const { stats } = tidings.hub
  const draining = sources.draining?.() ?? false
  const connections = sources.connections?.()
  const totalsConnections = sum((i) => i.connections)
  return {
    time: now,
    startedAt: tidings.startedAt,
    fingerprint: tidings.fingerprint,
    version: STATUS_VERSION,
    ready: (sources.ready?.() ?? true) && !draining && !(sources.atCapacity?.() ?? false),
    draining,
    totals: {
      connections: sum((i) => i.connections),
      subscriptions: sum((i) => i.subscriptions),
      messagesIn: sum((i) => i.messagesIn),
      messagesOut: sum((i) => i.messagesOut),
      deliveries: stats.deliveries,
      replays: stats.replays,
      replayedMessages: stats.replayedMessages,
      slowConsumerCloses: stats.slowConsumerCloses,
      badFrames: tidings.rejected.badFrames,
      badBodies: tidings.rejected.badBodies,
      duplicates: tidings.duplicates,
      loops: tidings.loops,
    },
    limited: { ...tidings.limited },
    budgets: {
      connections: connections?.held ?? totalsConnections,
      connectionCeiling: connections?.ceiling ?? 0,
      handshakes: connections?.handshaking ?? 0,
      instances: tidings.hub.count,
      historyBytes: tidings.hub.ledger.bytes,
      outputBytes: tidings.hub.output.waiting,
    },
    instances,
    peers: [...(sources.peers?.() ?? [])],
    backplane: sources.backplane?.(),
    runtime: sources.runtime?.() ?? {},
  }
}
