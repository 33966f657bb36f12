/**
 * Operations routes on the admin app: `GET /metrics` (Prometheus text), `/healthz`
 * (alive), `/readyz` (listening and not draining), `/stats.json` (the dashboard's feed)
 * and `/dashboard/`. Runtime-free; the adapter supplies readiness, runtime figures and
 * peer health through OpsOptions.
 */
import type { Hono } from 'hono'
import {
  EXPOSITION_CONTENT_TYPE,
  type MetricFamily,
  renderExposition,
} from '../metrics/exposition.ts'
import { coreFamilies } from '../metrics/families.ts'
import { collectStats, type StatsSources } from '../metrics/stats.ts'
import type { Tidings } from '../tidings.ts'
import { DASHBOARD_HTML } from './dashboard.html.ts'

export interface OpsOptions extends StatsSources {
  /** Metric families the runtime adds to `/metrics` (Node: event loop, memory, CPU). */
  runtimeFamilies?: () => readonly MetricFamily[]
}

const NO_STORE = { 'Cache-Control': 'no-store' }

/** The dashboard runs its own inline script and talks only to this origin. */
const DASHBOARD_HEADERS = {
  ...NO_STORE,
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy':
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
}

export function mountOpsRoutes(app: Hono, tidings: Tidings, options: OpsOptions = {}): void {
  app.get('/healthz', (c) => c.json({ status: 'alive' }, 200, NO_STORE))

  app.get('/readyz', (c) => {
    const draining = options.draining?.() ?? false
    const listening = options.ready?.() ?? true
    if (draining) return c.json({ status: 'draining' }, 503, NO_STORE)
    if (!listening) return c.json({ status: 'not_listening' }, 503, NO_STORE)
    if (options.atCapacity?.()) {
      return c.json(
        {
          status: 'at_capacity',
          reason:
            'holding as many client connections as "limits.connections" (or the descriptor limit) allows',
        },
        503,
        NO_STORE
      )
    }
    return c.json({ status: 'ready' }, 200, NO_STORE)
  })

  app.get('/metrics', (c) => {
    const families = coreFamilies(collectStats(tidings, options))
    const extra = options.runtimeFamilies?.() ?? []
    return c.body(renderExposition([...families, ...extra]), 200, {
      ...NO_STORE,
      'Content-Type': EXPOSITION_CONTENT_TYPE,
    })
  })

  app.get('/stats.json', (c) => c.json(collectStats(tidings, options), 200, NO_STORE))

  app.get('/dashboard', (c) => c.redirect('dashboard/', 301))
  app.get('/dashboard/', (c) => c.body(DASHBOARD_HTML, 200, DASHBOARD_HEADERS))
}
