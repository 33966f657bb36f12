/**
 * Operations routes on the admin app: `GET /metrics` (Prometheus text), `/healthz`
 * (alive), `/readyz` (listening, not draining, not at the connection ceiling), `/stats.json`
 * (the dashboard's feed) and `/dashboard/`. Runtime-free: the node supplies its state and
 * the runtime's figures.
 */
import type { Hono } from 'hono'
import { EXPOSITION_CONTENT_TYPE, renderExposition } from '../metrics/exposition.ts'
import { coreFamilies } from '../metrics/families.ts'
import type { TidingsNode } from '../node/node.ts'
import { DASHBOARD_HTML } from './dashboard.html.ts'

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

/** Why the node is not ready, or undefined when it is. */
function notReady(node: TidingsNode): Record<string, string> | undefined {
  if (node.state.draining) return { status: 'draining' }
  if (!node.state.listening) return { status: 'not_listening' }
  if (node.admission.atCapacity) {
    return {
      status: 'at_capacity',
      reason:
        'holding as many client connections as "limits.connections" (or the descriptor limit) allows',
    }
  }
  return undefined
}

export function mountOpsRoutes(app: Hono, node: TidingsNode): void {
  app.get('/healthz', (c) => c.json({ status: 'alive' }, 200, NO_STORE))

  app.get('/readyz', (c) => {
    const why = notReady(node)
    // A node cut off from its backplane still serves its own sockets: it says so, but stays
    // ready, or a broker outage would take every node out of the balancer at once.
    const backplane = node.backplane ? { backplane: node.backplane.state } : {}
    return why
      ? c.json({ ...why, ...backplane }, 503, NO_STORE)
      : c.json({ status: 'ready', ...backplane }, 200, NO_STORE)
  })

  app.get('/metrics', async (c) => {
    const families = coreFamilies(await node.statsOf())
    const extra = node.options.runtime?.families?.() ?? []
    return c.body(renderExposition([...families, ...extra]), 200, {
      ...NO_STORE,
      'Content-Type': EXPOSITION_CONTENT_TYPE,
    })
  })

  app.get('/stats.json', async (c) => c.json(await node.statsOf(), 200, NO_STORE))

  app.get('/dashboard', (c) => c.redirect('dashboard/', 301))
  app.get('/dashboard/', (c) => c.body(DASHBOARD_HTML, 200, DASHBOARD_HEADERS))
}
