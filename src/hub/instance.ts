/** Everything one instance owns: its sockets, subscription index, history and counters. */
import type { HistoryOptions } from '../config/schema.ts'
import type { Connection } from './connection.ts'
import { History, type HistoryLedger } from './history.ts'

/** The last fan-out target list of an instance, valid while `version` is the instance's. */
export interface TargetCache {
  readonly version: number
  readonly subscribers: readonly string[]
  readonly targets: readonly Connection[]
}

export class Instance {
  /** subscriber id → the open connections subscribed to it. */
  readonly index = new Map<string, Set<Connection>>()
  readonly connections = new Set<Connection>()
  readonly history: History
  /** Bumped on every change to `index`, so a cached target list knows when it is stale. */
  version = 0
  lastTargets: TargetCache | undefined = undefined
  /** Connections ever accepted (Aphlict's `clients.total`). */
  total = 0
  /** Valid messages received for this instance. */
  messagesIn = 0
  /** Live deliveries to sockets (replays and pongs excluded). */
  messagesOut = 0
  /** Its sockets held by other processes of this node (worker processes; see Hub.holdElsewhere). */
  heldElsewhere = 0

  constructor(
    readonly name: string,
    history: HistoryOptions,
    ledger?: HistoryLedger
  ) {
    this.history = new History(history, ledger)
  }

  get active(): number {
    return this.connections.size
  }

  /** True when dropping this instance would lose nothing but its counters. */
  get idle(): boolean {
    return this.connections.size === 0 && this.heldElsewhere === 0 && this.history.size === 0
  }
}
