/**
 * Starts the Workers adapter locally in workerd (wrangler's `unstable_startWorker`, the
 * project's wrangler.toml) on 127.0.0.1, port 0, with no inspector, no watcher and nothing
 * persisted to disk, for the contract suite and the Workers tests. Offline: every wrangler
 * switch that would reach the internet is turned off before wrangler loads.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { inject } from 'vitest'
import type { Target, TargetOptions } from '../contract/target.ts'

/** Keeps wrangler offline: no telemetry, crash reports, cf.json fetch or update check. */
export const OFFLINE_WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  // A running test's worker must not restart because wrangler.toml was touched.
  WRANGLER_CI_DISABLE_CONFIG_WATCHING: 'true',
  CI: 'true',
}
Object.assign(process.env, OFFLINE_WRANGLER_ENV)

const CONFIG_PATH = fileURLToPath(new URL('../../wrangler.toml', import.meta.url))

/**
 * The bundle built by the workers project's global setup. Without it (another project), the
 * worker is built from source and wrangler's watcher restarts it, dropping every Durable
 * Object, whenever a source file changes.
 */
function prebuiltBundle(): string | undefined {
  try {
    return inject('workerBundle') || undefined
  } catch {
    return undefined
  }
}
export const TEST_SECRET = 'test-secret-for-loopback-only'

export interface WorkerOptions extends TargetOptions {
  /** TIDINGS_SECRET; the test secret unless given (null: none). */
  secret?: string | null
  shards?: number
  /** TIDINGS_INSECURE_OPEN=1. */
  open?: boolean
  /** More TIDINGS_CONFIG keys (cluster, relay, origins). */
  config?: Record<string, unknown>
  /** wrangler's log level; "warn" (or $TIDINGS_TEST_LOG) keeps test output quiet. */
  logLevel?: 'debug' | 'info' | 'log' | 'warn' | 'error' | 'none'
}

export interface RunningWorker {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  origin: string
  dispose(): Promise<void>
}

export async function startWorker(options: WorkerOptions = {}): Promise<RunningWorker> {
  const { unstable_startWorker } = await import('wrangler')
  const secret = options.secret === undefined ? TEST_SECRET : options.secret
  const vars: Record<string, string> = {
    TIDINGS_SHARDS: String(options.shards ?? 1),
    TIDINGS_CONFIG: JSON.stringify({
      limits: options.limits ?? {},
      history: options.history ?? {},
      ...(options.origins ? { origins: options.origins } : {}),
      ...options.config,
    }),
  }
  if (options.open) vars.TIDINGS_INSECURE_OPEN = '1'
  const bindings: Record<string, { type: 'plain_text' | 'secret_text'; value: string }> = {}
  for (const [name, value] of Object.entries(vars)) bindings[name] = { type: 'plain_text', value }
  if (secret !== null) bindings.TIDINGS_SECRET = { type: 'secret_text', value: secret }
  const bundle = prebuiltBundle()
  const root = bundle ? ownProjectRoot(bundle) : undefined
  const worker = await unstable_startWorker({
    // The prebuilt bundle is bundled again by wrangler (cheap: one file), which adds its
    // local-dev middleware (e.g. draining unread request bodies). Each worker gets its own
    // project directory for that build, so no two test processes share a .wrangler/tmp
    // (where one's teardown broke another's rebuild: "Could not resolve
    // …/middleware-loader.entry.ts").
    config: root ? join(root, 'wrangler.toml') : CONFIG_PATH,
    // A developer's .dev.vars must not leak into tests.
    envFiles: [],
    bindings,
    dev: {
      server: { hostname: '127.0.0.1', port: 0 },
      inspector: false,
      watch: false,
      persist: false,
      logLevel: options.logLevel ?? (process.env.TIDINGS_TEST_LOG as 'log' | undefined) ?? 'warn',
    },
  })
  const dispose = async (): Promise<void> => {
    await worker.dispose()
    if (root) rmSync(root, { recursive: true, force: true })
  }
  try {
    const url = await worker.url
    return { origin: url.origin, dispose }
  } catch (error) {
    await dispose()
    throw error
  }
}

/** A directory of its own beside the bundle, holding wrangler.toml with `main` = the bundle. */
function ownProjectRoot(bundle: string): string {
  const root = mkdtempSync(join(dirname(bundle), 'project-'))
  const toml = readFileSync(CONFIG_PATH, 'utf8').replace(
    /^main = .*$/m,
    `main = ${JSON.stringify(bundle)}`
  )
  writeFileSync(join(root, 'wrangler.toml'), toml)
  return root
}

/** The contract suite's view: both ports on the Worker's one origin, the secret on admin calls. */
export async function workerTarget(options: WorkerOptions = {}): Promise<Target> {
  const worker = await startWorker(options)
  return {
    clientUrl: worker.origin.replace(/^http/, 'ws'),
    adminUrl: worker.origin,
    adminHeaders: { 'X-Tidings-Secret': TEST_SECRET },
    close: () => worker.dispose(),
  }
}
