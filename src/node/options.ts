/** What a node is assembled from (src/node/node.ts), and what it keeps for its runtime. */
import type { SecretPolicy } from '../admin/auth.ts'
import type { BrokerFactory } from '../backplane/broker.ts'
import type { Config } from '../config/schema.ts'
import type { MetricFamily } from '../metrics/exposition.ts'
import type { RuntimeSummary } from '../metrics/stats.ts'
import type { Clock, Logger, PeerTransport, Scheduler } from '../ports.ts'
import type { Timers } from '../relay/timers.ts'
import type { StatusBody } from '../tidings.ts'
import type { WorkerReport } from './workers.ts'

export interface NodeOptions {
  config: Config
  clock: Clock
  logger: Logger
  scheduler: Scheduler
  /** For relay retries and drain waves; the global timers by default. */
  timers?: Timers
  /** How relays reach `cluster` peers (required when the node relays). */
  transport?: PeerTransport | undefined
  /** How the node reaches its `backplane` (required when one is configured). */
  broker?: BrokerFactory | undefined
  /** Kept across restarts by runtimes that can (Workers); fresh per node otherwise. */
  fingerprint?: string
  /** Whether this node relays to `cluster` (Workers: shard 0 only). Default true. */
  relays?: boolean
  /** Who may use the admin port (beyond `secret` and `relay.trustLoopback` from the config). */
  secret?: Pick<SecretPolicy, 'required' | 'open'> & {
    /** Every admin route needs the secret, not only POST (a public admin endpoint). */
    everyRoute?: boolean
  }
  /** What the runtime knows that the core cannot. */
  runtime?: {
    /** The connection ceiling when `limits.connections` is 0 (Node: descriptor limit less a reserve). */
    ceiling?: number | undefined
    /** The TCP peer of an admin request, for `relay.trustLoopback` and log lines. */
    remoteAddress?: (request: Request, env: unknown) => string | undefined
    /** Metric families the runtime adds (event loop, memory, CPU). */
    families?: () => readonly MetricFamily[]
    /** Figures the runtime adds to the dashboard. */
    summary?: () => RuntimeSummary
    /** Status keys the runtime adds (after the core's). */
    statusExtras?: (status: StatusBody) => void
    /** The reports of the processes holding this node's sockets, when they are elsewhere. */
    workers?: () => Promise<readonly WorkerReport[]>
  }
}

/** What a runtime keeps of an instance across restarts (see TidingsNode.restore). */
export interface SavedInstance {
  history: readonly { at: number; subscribers: string[]; text: string }[]
  counters?: { total: number; messagesIn: number; messagesOut: number } | undefined
}

export interface NodeState {
  /** Every server is bound. */
  listening: boolean
  /** Draining (or closing): new sockets are refused and /readyz answers 503. */
  draining: boolean
  /**
   * Handing over to a successor on the same listening sockets: a connection this process
   * accepted just before it stopped accepting is upgraded and closed with 4000 (the client
   * reconnects, to the successor), not refused.
   */
  handingOver?: boolean
}
