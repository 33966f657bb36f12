/**
 * SECURITY.md's budget table and the README's limits table are the promise to operators:
 * every `limits.*` key, every counted limit and every close reason must be in them.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { CLOSE_REASONS } from '../../src/close-codes.ts'
import { limitsSchema } from '../../src/config/schema.ts'
import { newLimitStats } from '../../src/limit-stats.ts'

const security = readFileSync(new URL('../../SECURITY.md', import.meta.url), 'utf8')
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
const budgets = security.slice(security.indexOf('## Budgets'), security.indexOf('## Hardening'))

const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

/** Not budgets: how fan-outs are sliced, and whose X-Forwarded-For is believed. */
const NOT_BUDGETS = new Set(['fanoutSlice', 'trustedProxies'])

describe('the documented budgets', () => {
  it('list every limits.* key in SECURITY.md and in the README', () => {
    for (const key of Object.keys(limitsSchema.shape)) {
      if (NOT_BUDGETS.has(key)) continue
      expect(budgets, key).toContain(`\`limits.${key}\``)
      expect(readme, key).toContain(`\`limits.${key}\``)
    }
  })

  it('name the counter of every limit that refuses or closes', () => {
    for (const key of Object.keys(newLimitStats())) {
      expect(budgets, key).toMatch(new RegExp(`\\| \`${snake(key)}\``))
    }
  })

  it('give every close reason a client can get', () => {
    for (const [limit, reason] of Object.entries(CLOSE_REASONS)) {
      if (limit === 'drain' || limit === 'shutdown' || limit === 'frameBytes') continue
      expect(budgets, limit).toContain(reason)
    }
  })
})
