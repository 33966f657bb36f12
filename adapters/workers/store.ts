/**
 * What a shard keeps in its Durable Object's SQLite storage so it survives hibernation and
 * eviction: the replay history, the status counters, its start time and the deployment's
 * fingerprint. The hub's in-memory history stays the authority on what is kept; storage
 * mirrors it (same entries, same order) and is trimmed to the same length after each append.
 */

/** The part of workerd's `SqlStorage` the store uses. */
export interface SqlLike {
  exec(query: string, ...bindings: (string | number | null)[]): { toArray(): unknown[] }
}

export interface StoredEntry {
  at: number
  subscribers: string[]
  text: string
}

export interface StoredCounters {
  total: number
  messagesIn: number
  messagesOut: number
}

export class ShardStore {
  constructor(private readonly sql: SqlLike) {
    sql.exec(
      'CREATE TABLE IF NOT EXISTS history (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, subscribers TEXT NOT NULL, message TEXT NOT NULL)'
    )
    sql.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
  }

  meta(key: string): string | undefined {
    const row = this.sql.exec('SELECT value FROM meta WHERE key = ?', key).toArray()[0] as
      | { value: string }
      | undefined
    return row?.value
  }

  setMeta(key: string, value: string): void {
    this.sql.exec(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      key,
      value
    )
  }

  counters(): StoredCounters | undefined {
    const text = this.meta('counters')
    if (text === undefined) return undefined
    try {
      const { total, messagesIn, messagesOut } = JSON.parse(text) as Partial<StoredCounters>
      if ([total, messagesIn, messagesOut].every((n) => typeof n === 'number')) {
        return { total, messagesIn, messagesOut } as StoredCounters
      }
    } catch {
      // Unreadable counters start again from zero.
    }
    return undefined
  }

  saveCounters(counters: StoredCounters): void {
    this.setMeta('counters', JSON.stringify(counters))
  }

  /** The stored history entries no older than `since`, oldest first. */
  history(since: number): StoredEntry[] {
    const rows = this.sql
      .exec('SELECT at, subscribers, message FROM history WHERE at >= ? ORDER BY seq', since)
      .toArray() as { at: number; subscribers: string; message: string }[]
    return rows.map((row) => ({
      at: row.at,
      subscribers: JSON.parse(row.subscribers) as string[],
      text: row.message,
    }))
  }

  /** Appends an entry (unless `keep` is 0), then keeps only the newest `keep` entries. */
  append(entry: StoredEntry, keep: number): void {
    if (keep > 0) {
      this.sql.exec(
        'INSERT INTO history (at, subscribers, message) VALUES (?, ?, ?)',
        entry.at,
        JSON.stringify(entry.subscribers),
        entry.text
      )
    }
    this.keep(keep)
  }

  /** Deletes all but the newest `keep` entries. */
  keep(keep: number): void {
    this.sql.exec(
      'DELETE FROM history WHERE seq <= (SELECT seq FROM history ORDER BY seq DESC LIMIT 1 OFFSET ?)',
      keep
    )
  }
}
