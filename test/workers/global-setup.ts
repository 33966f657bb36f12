/**
 * Builds the Worker once for the whole `workers` project, exactly as `wrangler deploy` would
 * (`--dry-run --outdir`), so every test runs the deployable bundle and none of them is
 * restarted by wrangler's source watcher when a file changes mid-test.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import type { TestProject } from 'vitest/node'
import { OFFLINE_WRANGLER_ENV } from '../helpers/worker-target.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    /** The built Worker entry (worker.js), or '' to let each test build from source. */
    workerBundle: string
  }
}

const ROOT = resolve(import.meta.dirname, '../..')

export default async function setup(project: TestProject): Promise<() => void> {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-worker-'))
  // Built from a copy of wrangler.toml in the run's own directory, so wrangler's scratch files
  // (.wrangler/tmp) land there too, not in the checkout.
  const config = join(dir, 'wrangler.toml')
  const entry = join(ROOT, 'adapters/workers/worker.ts')
  writeFileSync(
    config,
    readFileSync(join(ROOT, 'wrangler.toml'), 'utf8').replace(
      /^main = .*$/m,
      `main = ${JSON.stringify(entry)}`
    )
  )
  const wrangler = join(ROOT, 'node_modules/wrangler/bin/wrangler.js')
  await promisify(execFile)(
    process.execPath,
    [wrangler, 'deploy', '--dry-run', '--config', config, '--outdir', join(dir, 'bundle')],
    { cwd: dir, env: { ...process.env, ...OFFLINE_WRANGLER_ENV }, timeout: 120_000 }
  )
  project.provide('workerBundle', join(dir, 'bundle', 'worker.js'))
  return () => rmSync(dir, { recursive: true, force: true })
}
