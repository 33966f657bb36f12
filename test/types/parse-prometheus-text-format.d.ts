/** Types for parse-prometheus-text-format 1.1.1 (the package ships none). */
declare module 'parse-prometheus-text-format' {
  export interface ParsedSample {
    value?: string
    labels?: Record<string, string>
    timestamp_ms?: string
    /** Histograms (unlabelled series only: the parser folds labelled ones together). */
    buckets?: Record<string, string>
    /** Summaries. */
    quantiles?: Record<string, string>
    count?: string
    sum?: string
  }
  export interface ParsedFamily {
    name: string
    help: string
    type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
    metrics: ParsedSample[]
  }
  export default function parsePrometheusTextFormat(text: string): ParsedFamily[]
}
