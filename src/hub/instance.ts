/** Everything one instance owns: its sockets, subscription index, history and counters. */
import type { HistoryOptions } from '../config/schema.ts'
import type { Connection } from './connection.ts'
import { History } from './history.ts'

export class Instance {
  /** subscriber id → the open connections subscribed to it. */
  readonly index = new Map<string, Set<Connection>>()
  readonly connections = new Set<Connection>()
  readonly history: History
  /** Connections ever accepted (Aphlict's `clients.total`). */
  total = 0
  /** Valid messages received for this instance. */
  messagesIn = 0
  /** Live deliveries to sockets (replays and pongs excluded). */
  messagesOut = 0

  constructor(
    readonly name: string,
    history: HistoryOptions
  ) {
    this.history = new History(history)
  }

  get active(): number {
    return this.connections.size
  }

  /** True when dropping this instance would lose nothing but its counters. */
  get idle(): boolean {
    return this.connections.size === 0 && this.history.size === 0
  }
}
