/**
 * `npm run attacks`: every hostile-client class of SECURITY.md against its own fresh
 * `tidings run` on 127.0.0.1 (the daemon's 256 MB heap cap, a bystander pinging throughout),
 * with what each one measured. Exit 0 when every class is contained, 1 otherwise.
 *
 *   npm run attacks -- [--only upgrade,ids,bytes,replay,replay-workers,churn,churn-workers,forged,deep,instances,idle,capacity,auth]
 *
 * The attacks themselves are in scripts/hardening/attacks.ts; test/node/hostile.test.ts runs
 * smaller versions of them in `npm test`.
 */
import { pathToFileURL } from 'node:url'
import { redisAvailable } from '../test/helpers/redis.ts'
import * as attack from './hardening/attacks.ts'

interface Row {
  name: string
  figures: string
  contained: boolean
}

type Runner = () => Promise<Row>

const close = (c: { code: number; reason: string } | undefined): string =>
  c ? `closed ${c.code} "${c.reason}"` : 'still open'

/** The bystander's slowest ping, and whether the server survived, for every row. */
function tail(m: attack.Measured): string {
  return `; bystander ping max ${m.bystanderMs.toFixed(0)} ms; ${m.logLines} log lines${m.alive ? '' : '; server DIED'}`
}

const RUNNERS: Record<string, [string, Runner]> = {
  upgrade: [
    'Unparseable upgrade targets (descriptors)',
    async () => {
      const m = await attack.hostileUpgrades()
      const answered = m.statuses.filter((s) => s !== 'none').length
      const statuses = [...new Set(m.statuses)].sort().join(',')
      return {
        name: '',
        figures: `${answered}/${m.count} answered (${statuses}); fds ${m.fdsBefore} → ${m.fdsAfter} after the clients hung up; a normal client then ${m.normal}${tail(m)}`,
        contained:
          m.alive && answered === m.count && m.fdsAfter <= m.fdsBefore && m.normal === 'connects',
      }
    },
  ],
  ids: [
    'Long subscription ids (bytes, not count)',
    async () => {
      const m = await attack.longIds()
      const outcomes = m.outcomes.map((o) => `${close(o.close)} after ${o.sent} ids`).join('; ')
      return {
        name: '',
        figures: `${m.connections} connections sending ids of ${m.idLength / 1000} kB: live memory +${m.heldMiB.toFixed(1)} MiB; ${outcomes}${tail(m)}`,
        contained: m.alive && m.heldMiB / m.connections < 1,
      }
    },
  ],
  bytes: [
    'Many 200-byte ids (subscription bytes)',
    async () => {
      const m = await attack.manyIds()
      return {
        name: '',
        figures: `${m.sent} ids sent: ${close(m.close)}${tail(m)}`,
        contained: m.alive && m.close?.code === 1008,
      }
    },
  ],
  replay: [
    'Replay burst from a non-reading socket',
    async () => {
      const m = await attack.replayBurst()
      return {
        name: '',
        figures: `history ~${m.historyMiB.toFixed(0)} MiB; ${m.replays} replays in one write: RSS peak +${m.rssPeakMiB.toFixed(0)} MiB; attacker ${close(m.close)}${tail(m)}`,
        contained: m.alive && m.rssPeakMiB < 64 && m.close?.code === 4008,
      }
    },
  ],
  'replay-workers': [
    'Replays over many turns from non-reading sockets, processes: 2',
    async () => {
      const m = await attack.replayTurns()
      return {
        name: '',
        figures: `history ~${m.historyMiB.toFixed(0)} MiB; ${m.attackers} sockets asking every 5 ms for ${m.seconds} s: RSS peak +${m.rssPeakMiB.toFixed(0)} MiB over primary and workers, ${m.cpuMs.toFixed(0)} ms CPU; ${m.closed4008} closed 4008${tail(m)}`,
        // Each socket may cost its output budget a few times over (the primary's copy, the
        // worker's, the socket's), never the history once per ask.
        contained:
          m.alive && m.rssPeakMiB < m.attackers * m.budgetMiB * 4 && m.closed4008 === m.attackers,
      }
    },
  ],
  churn: [
    'New subscriber ids, subscribed and dropped (Redis, routing: subscriber)',
    async () => {
      if (!redisAvailable())
        return { name: '', figures: 'skipped: no redis-server', contained: true }
      const m = await attack.idChurn()
      return {
        name: '',
        figures: `${m.ids} ids in ${m.seconds} s on one socket: at most ${m.peakChannels} Redis channels, node RSS peak +${m.rssPeakMiB.toFixed(0)} MiB, ${m.cpuMs.toFixed(0)} ms CPU, Redis +${m.redisPeakMiB.toFixed(1)} MiB; attacker ${close(m.close)}${tail(m)}`,
        // The 1000 ids of the moment, and at most 10,000 lingering.
        contained: m.alive && m.peakChannels <= 11_000,
      }
    },
  ],
  'churn-workers': [
    'The same with processes: 2',
    async () => {
      if (!redisAvailable())
        return { name: '', figures: 'skipped: no redis-server', contained: true }
      const m = await attack.idChurn({ processes: 2 })
      return {
        name: '',
        figures: `${m.ids} ids in ${m.seconds} s on one socket: at most ${m.peakChannels} Redis channels, primary RSS peak +${m.rssPeakMiB.toFixed(0)} MiB, ${m.cpuMs.toFixed(0)} ms CPU over primary and workers, Redis +${m.redisPeakMiB.toFixed(1)} MiB; attacker ${close(m.close)}${tail(m)}`,
        contained: m.alive && m.peakChannels <= 11_000,
      }
    },
  ],
  forged: [
    'Ids posted ahead of time (dedup poisoning)',
    async () => {
      const m = await attack.forgedIds()
      return {
        name: '',
        figures: `${m.forged} guessed ids posted ahead; then ${m.messages} messages without uniqueID: ${m.received}/${m.messages} delivered${tail(m)}`,
        contained: m.alive && m.received === m.messages,
      }
    },
  ],
  deep: [
    'Deeply nested JSON body',
    async () => {
      const m = await attack.deepBody()
      return {
        name: '',
        figures: `nested ${m.depth} deep → ${m.badStatus} ${m.badCode}; corrected re-post (same uniqueID) → ${m.goodStatus}, delivered ${m.received}/1${tail(m)}`,
        contained: m.alive && m.badStatus >= 400 && m.badStatus < 500 && m.received === 1,
      }
    },
  ],
  instances: [
    '1 MB POSTs to 400 instances (history)',
    async () => {
      const m = await attack.instanceFlood()
      const statuses = Object.entries(m.statuses)
        .map(([status, n]) => `${n}× ${status === '0' ? 'unanswered' : status}`)
        .join(', ')
      return {
        name: '',
        figures: `${statuses}: live memory +${m.heldMiB.toFixed(0)} MiB, RSS +${m.rssMiB.toFixed(0)} MiB${tail(m)}`,
        contained: m.alive && m.heldMiB < 100,
      }
    },
  ],
  idle: [
    'Connections that never upgrade (slowloris)',
    async () => {
      const m = await attack.idleConnections()
      return {
        name: '',
        figures: `${m.count} half-sent requests from one address: ${m.refused} refused with 429; server held +${m.heldEarly} fds after 2 s, +${m.heldLate} after ${m.waitedMs / 1000} s${tail(m)}`,
        contained: m.alive && m.heldLate < 10,
      }
    },
  ],
  capacity: [
    'Connections up to the ceiling',
    async () => {
      const m = await attack.atCapacity()
      return {
        name: '',
        figures: `limits.connections ${m.ceiling}: the next one got "${m.refusal}"; /readyz ${m.readyz.status} ${m.readyz.body.status}, ${m.readyAfter} once they left${tail(m)}`,
        contained:
          m.alive && m.refusal.includes('503') && m.readyz.status === 503 && m.readyAfter === 200,
      }
    },
  ],
  auth: [
    'Wrong-secret POST flood (log lines)',
    async () => {
      const m = await attack.authFlood()
      return {
        name: '',
        figures: `${m.count} wrong-secret POSTs: ${m.lines} log lines${tail(m)}`,
        contained: m.alive && m.lines <= 5,
      }
    },
  ],
}

export async function runAttacks(only: readonly string[]): Promise<Row[]> {
  const rows: Row[] = []
  for (const [key, [name, run]] of Object.entries(RUNNERS)) {
    if (!only.includes(key)) continue
    process.stderr.write(`[attacks] ${name} ...\n`)
    try {
      rows.push({ ...(await run()), name })
    } catch (error) {
      rows.push({ name, figures: `harness error: ${(error as Error).message}`, contained: false })
    }
  }
  return rows
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  let only = Object.keys(RUNNERS)
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    if (arg === '--only') only = (args[++i] ?? '').split(',')
    else if (arg.startsWith('--only=')) only = arg.slice(7).split(',')
    else {
      process.stderr.write(`usage: npm run attacks -- [--only ${Object.keys(RUNNERS).join(',')}]\n`)
      process.exit(2)
    }
  }
  const rows = await runAttacks(only)
  process.stdout.write('\n| class | figures | contained |\n|---|---|---|\n')
  for (const row of rows) {
    process.stdout.write(`| ${row.name} | ${row.figures} | ${row.contained ? 'yes' : 'NO'} |\n`)
  }
  process.exit(rows.every((row) => row.contained) ? 0 : 1)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  void main()
}
