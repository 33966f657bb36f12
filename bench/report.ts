/** The bench's table and target checks, printed to stdout and returned for the JSON. */
import type { AdminFigures, RunFigures } from './scenarios.ts'
import { SERVER_LABELS, type ServerKind } from './servers.ts'

/** One server's figures; a part left out with --only leaves its fields undefined. */
export interface ServerResult {
  kind: ServerKind
  idleRssMB?: number
  targetedSmall?: RunFigures
  targetedBig?: RunFigures
  /** CPU µs per targeted message of every round. */
  targetedRounds?: { big: number | undefined; small: number }[]
  rssPerConnKB?: number
  heapPerConnKB?: number
  rssPerConnFromIdleKB?: number
  rssAtBigMB?: number
  broadcastBig?: RunFigures
  broadcast?: RunFigures
  normalPayload?: RunFigures
  slow?: RunFigures
  slowCount?: number
  slowCloses?: Record<string, number>
  slowEnded?: number
  admin?: AdminFigures
}

interface ReportOptions {
  clients: number
  small: number
  big: number
  rounds: number
  slowClients: number
  slowPercent: number
  slowPayload: number
}

interface Row {
  label: string
  value: (r: ServerResult) => number
  digits: number
  /** Which way is better, for the ratio columns. */
  better?: 'higher' | 'lower'
}

const fmt = (value: number, digits: number): string =>
  Number.isFinite(value)
    ? value.toLocaleString('en-US', {
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
      })
    : 'n/a'

function rows(o: ReportOptions): Row[] {
  const k = (n: number) => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n))
  return [
    {
      label: `broadcast deliveries/s (${k(o.clients)} clients)`,
      value: (r) => r.broadcast?.rate ?? Number.NaN,
      digits: 0,
      better: 'higher',
    },
    {
      label: 'server CPU µs / delivery',
      value: (r) => r.broadcast?.cpuPerDelivery ?? Number.NaN,
      digits: 2,
      better: 'lower',
    },
    {
      label: 'server CPU use (cores)',
      value: (r) => r.broadcast?.serverCpuShare ?? Number.NaN,
      digits: 2,
    },
    {
      label: 'fleet CPU use (cores)',
      value: (r) => r.broadcast?.fleetCpuShare ?? Number.NaN,
      digits: 2,
    },
    {
      label: 'publisher CPU use (cores)',
      value: (r) => r.broadcast?.publisherCpuShare ?? Number.NaN,
      digits: 2,
    },
    {
      label: 'whole machine busy (cores)',
      value: (r) => r.broadcast?.machineBusy ?? Number.NaN,
      digits: 2,
    },
    {
      label: '… of which other work (kernel, other processes)',
      value: (r) =>
        r.broadcast
          ? r.broadcast.machineBusy -
            r.broadcast.serverCpuShare -
            r.broadcast.fleetCpuShare -
            r.broadcast.publisherCpuShare
          : Number.NaN,
      digits: 2,
    },
    {
      label: 'latency p50 ms',
      value: (r) => r.broadcast?.p50ms ?? Number.NaN,
      digits: 1,
      better: 'lower',
    },
    {
      label: 'latency p99 ms',
      value: (r) => r.broadcast?.p99ms ?? Number.NaN,
      digits: 1,
      better: 'lower',
    },
    {
      label: 'delivered ratio',
      value: (r) => r.broadcast?.deliveredRatio ?? Number.NaN,
      digits: 4,
    },
    {
      label: `targeted CPU µs / message @${k(o.small)}${o.rounds > 1 ? ` (best of ${o.rounds})` : ''}`,
      value: (r) => r.targetedSmall?.cpuPerMessage ?? Number.NaN,
      digits: 1,
      better: 'lower',
    },
    {
      label: `targeted CPU µs / message @${k(o.big)}${o.rounds > 1 ? ` (best of ${o.rounds})` : ''}`,
      value: (r) => r.targetedBig?.cpuPerMessage ?? Number.NaN,
      digits: 1,
      better: 'lower',
    },
    {
      label: `targeted @${k(o.big)} / @${k(o.small)}`,
      value: (r) =>
        (r.targetedBig?.cpuPerMessage ?? Number.NaN) /
        (r.targetedSmall?.cpuPerMessage ?? Number.NaN),
      digits: 2,
    },
    {
      label: `… user-space part @${k(o.small)}`,
      value: (r) => r.targetedSmall?.userPerMessage ?? Number.NaN,
      digits: 1,
      better: 'lower',
    },
    {
      label: `… user-space part @${k(o.big)}`,
      value: (r) => r.targetedBig?.userPerMessage ?? Number.NaN,
      digits: 1,
      better: 'lower',
    },
    {
      label: `RSS KB / idle connection (${k(Math.floor(o.big / 2))}→${k(o.big)}, after GC)`,
      value: (r) => r.rssPerConnKB ?? Number.NaN,
      digits: 2,
      better: 'lower',
    },
    {
      label: `heap KB / idle connection (${k(Math.floor(o.big / 2))}→${k(o.big)})`,
      value: (r) => r.heapPerConnKB ?? Number.NaN,
      digits: 2,
      better: 'lower',
    },
    {
      label: `RSS KB / connection from idle (0→${k(o.big)})`,
      value: (r) => r.rssPerConnFromIdleKB ?? Number.NaN,
      digits: 2,
      better: 'lower',
    },
    {
      label: `broadcast deliveries/s (${k(o.big)} clients)`,
      value: (r) => r.broadcastBig?.rate ?? Number.NaN,
      digits: 0,
      better: 'higher',
    },
    {
      label: `event-loop delay max ms (${k(o.big)} broadcast)`,
      value: (r) => r.broadcastBig?.eldMaxMs ?? Number.NaN,
      digits: 1,
      better: 'lower',
    },
    {
      label: 'admin POST/s, no subscribers',
      value: (r) => r.admin?.perSecond ?? Number.NaN,
      digits: 0,
      better: 'higher',
    },
    {
      label: 'admin server CPU µs / POST',
      value: (r) => r.admin?.cpuPerPost ?? Number.NaN,
      digits: 1,
      better: 'lower',
    },
    {
      label: `${k(o.slowClients)} clients, +${o.slowPayload} B: p99 ms, all reading`,
      value: (r) => r.normalPayload?.p99ms ?? Number.NaN,
      digits: 1,
      better: 'lower',
    },
    {
      label: `… ${o.slowPercent}% not reading: others' p99 ms`,
      value: (r) => r.slow?.p99ms ?? Number.NaN,
      digits: 1,
      better: 'lower',
    },
    {
      label: "… others' p99 / all-reading p99",
      value: (r) => (r.slow?.p99ms ?? Number.NaN) / (r.normalPayload?.p99ms ?? Number.NaN),
      digits: 2,
    },
    {
      label: '… others delivered ratio',
      value: (r) => r.slow?.deliveredRatio ?? Number.NaN,
      digits: 4,
    },
    {
      label: '… server RSS max MB, all reading',
      value: (r) => r.normalPayload?.rssMaxMB ?? Number.NaN,
      digits: 0,
    },
    {
      label: '… server RSS max MB, slow run',
      value: (r) => r.slow?.rssMaxMB ?? Number.NaN,
      digits: 0,
    },
    {
      label: '… stalled clients closed with 4008',
      value: (r) => (r.slowCloses ? (r.slowCloses['4008'] ?? 0) : Number.NaN),
      digits: 0,
    },
  ]
}

function table(headers: string[], body: string[][]): string {
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...body.map((row) => (row[i] ?? '').length))
  )
  const line = (cells: string[]) =>
    `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join(' | ')} |`
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`
  return [line(headers), rule, ...body.map(line)].join('\n')
}

export interface Check {
  target: string
  value: string
  pass: boolean
}

function checks(results: ServerResult[]): Check[] {
  const by = (kind: ServerKind) => results.find((r) => r.kind === kind)
  const t = by('tidings')
  if (!t) return []
  const out: Check[] = []
  const add = (target: string, value: number, shown: string, pass: boolean): void => {
    if (Number.isFinite(value)) out.push({ target, value: shown, pass })
  }
  const rate = t.broadcast?.rate ?? Number.NaN
  const p99 = t.broadcast?.p99ms ?? Number.NaN
  const cork = by('ws-cork')?.broadcast
  const plain = by('ws')?.broadcast
  if (cork) {
    const ratio = rate / cork.rate
    add('broadcast ≥ 1.2× corked bare ws', ratio, `${fmt(ratio, 2)}×`, ratio >= 1.2)
    add(
      'p99 no worse than corked bare ws',
      p99,
      `${fmt(p99, 1)} vs ${fmt(cork.p99ms, 1)} ms`,
      p99 <= cork.p99ms
    )
  }
  if (plain) {
    const ratio = rate / plain.rate
    add('broadcast ≥ 3× bare ws', ratio, `${fmt(ratio, 2)}×`, ratio >= 3)
  }
  const cpu = t.broadcast?.cpuPerDelivery ?? Number.NaN
  add('CPU per delivery ≤ 4 µs', cpu, `${fmt(cpu, 2)} µs`, cpu <= 4)
  const flat =
    (t.targetedBig?.cpuPerMessage ?? Number.NaN) / (t.targetedSmall?.cpuPerMessage ?? Number.NaN)
  add('targeted CPU big/small ≤ 1.3', flat, fmt(flat, 2), flat <= 1.3)
  const rss = t.rssPerConnKB ?? Number.NaN
  add('RSS per idle connection ≤ 8 KB', rss, `${fmt(rss, 2)} KB`, rss <= 8)
  const slow = (t.slow?.p99ms ?? Number.NaN) / (t.normalPayload?.p99ms ?? Number.NaN)
  add("slow consumers: others' p99 ≤ 2×", slow, `${fmt(slow, 2)}×`, slow <= 2)
  if (t.slowCloses && t.slowCount !== undefined) {
    const closed = t.slowCloses['4008'] ?? 0
    add(
      'slow consumers closed with 4008',
      closed,
      `${closed} of ${t.slowCount}`,
      closed === t.slowCount && t.slowCount > 0
    )
  }
  return out
}

export function printReport(
  results: ServerResult[],
  options: ReportOptions,
  machine: {
    cpus: number
    cpuModel: string
    node: string
    loadBefore: number[]
    loadAfter: number[]
  }
): { table: string; checks: Check[] } {
  const kinds = results.map((r) => r.kind)
  const t = results.find((r) => r.kind === 'tidings')
  const ratioKinds = t ? (['ws-cork', 'ws'] as const).filter((k) => kinds.includes(k)) : []
  const headers = [
    'metric',
    ...results.map((r) => SERVER_LABELS[r.kind]),
    ...ratioKinds.map((k) => `tidings ÷ ${SERVER_LABELS[k]}`),
  ]
  const body = rows(options)
    .filter((row) => results.some((r) => Number.isFinite(row.value(r))))
    .map((row) => [
      row.label,
      ...results.map((r) => fmt(row.value(r), row.digits)),
      ...ratioKinds.map((k) => {
        const base = results.find((r) => r.kind === k) as ServerResult
        return row.better ? `${fmt(row.value(t as ServerResult) / row.value(base), 2)}×` : ''
      }),
    ])
  const text = table(headers, body)
  const verdicts = checks(results)
  const out = [
    '',
    `Machine: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}; load average before ${machine.loadBefore.map((n) => n.toFixed(2)).join(' ')}, after ${machine.loadAfter.map((n) => n.toFixed(2)).join(' ')}`,
    '',
    text,
    '',
    ...verdicts.map((c) => `${c.pass ? 'PASS' : 'MISS'}  ${c.target}: ${c.value}`),
    '',
  ]
  process.stdout.write(out.join('\n'))
  return { table: text, checks: verdicts }
}
