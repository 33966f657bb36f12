/**
 * The Prometheus text exposition format (version 0.0.4), rendered from plain data.
 * Runtime-free: the core builds metric families from its counters, adapters add their own.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary'

export type Labels = Readonly<Record<string, string>>

export interface Sample {
  /** Appended to the family name: `_bucket`, `_sum`, `_count` for histograms and summaries. */
  readonly suffix?: string
  readonly labels?: Labels
  readonly value: number
}

export interface MetricFamily {
  /** Full name, e.g. `tidings_deliveries_total`. */
  readonly name: string
  readonly help: string
  readonly type: MetricType
  readonly samples: readonly Sample[]
}

/** The Content-Type Prometheus expects for this format. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** HELP text escapes backslash and line feed. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

/** Label values also escape the double quote. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Number.POSITIVE_INFINITY) return '+Inf'
  if (value === Number.NEGATIVE_INFINITY) return '-Inf'
  return String(value)
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels) return ''
  const parts: string[] = []
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) {
      throw new Error(`invalid Prometheus label name "${name}"`)
    }
    parts.push(`${name}="${escapeLabelValue(value)}"`)
  }
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

/**
 * Renders families in order, each with its HELP and TYPE lines. Families with no samples
 * still print HELP/TYPE, so a scraper sees that the metric exists. Names are checked: a bad
 * one is a programming error, not an operator's.
 */
export function renderExposition(families: readonly MetricFamily[]): string {
  const lines: string[] = []
  const seen = new Set<string>()
  for (const family of families) {
    if (!METRIC_NAME.test(family.name)) throw new Error(`invalid metric name "${family.name}"`)
    if (seen.has(family.name)) throw new Error(`metric "${family.name}" rendered twice`)
    seen.add(family.name)
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
    lines.push(`# TYPE ${family.name} ${family.type}`)
    for (const sample of family.samples) {
      lines.push(
        `${family.name}${sample.suffix ?? ''}${formatLabels(sample.labels)} ${formatValue(sample.value)}`
      )
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`
}
