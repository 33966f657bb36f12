/**
 * The package as users get it: `npm pack` (which builds it), then `npm install` of the tarball
 * into an empty project, and only that project's copy is used from there on — its `tidings`
 * command, a node started from it that delivers to its `tidings listen`, every export
 * imported from a script (and type-checked), and the Workers export bundled by wrangler into
 * a Workers project of the user's own. Needs the npm registry for the dependencies.
 */
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../helpers/process.ts'
import { OFFLINE_WRANGLER_ENV } from '../helpers/worker-target.ts'
import { eventually } from '../helpers/ws-client.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const exec = promisify(execFile)
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'

let project: string
let tarball: string

/** Runs a command in the user's project; resolves with its output (rejects on failure). */
async function inProject(command: string, args: string[], timeoutMs = 60_000) {
  return exec(command, args, {
    cwd: project,
    timeout: timeoutMs,
    env: { ...process.env, npm_config_update_notifier: 'false', ...OFFLINE_WRANGLER_ENV },
  })
}

const tidings = (args: string[]) =>
  inProject(process.execPath, [join(project, 'node_modules/tidings/bin/tidings.js'), ...args])

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), 'tidings-user-'))
  const packed = mkdtempSync(join(tmpdir(), 'tidings-pack-'))
  await exec(NPM, ['pack', '--pack-destination', packed], { cwd: ROOT, timeout: 120_000 })
  tarball = join(packed, readdirSync(packed).find((name) => name.endsWith('.tgz')) as string)
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'user-project', private: true, type: 'module' })
  )
  await inProject(NPM, ['install', '--no-audit', '--no-fund', tarball], 180_000)
}, 300_000)

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true })
})

describe('the installed package', { timeout: 120_000 }, () => {
  it('ships what runs and what a user reads, and nothing else', async () => {
    const { stdout } = await exec('tar', ['tzf', tarball])
    const files = stdout.trim().split('\n')
    expect(files).toEqual(
      expect.arrayContaining([
        'package/LICENSE',
        'package/README.md',
        'package/SECURITY.md',
        'package/bin/tidings.js',
        'package/dist/node-entry.js',
        'package/dist/adapters/node/embed.js',
        'package/dist/adapters/workers/index.js',
        'package/dist/clients/publisher.d.ts',
        'package/deploy/tidings.service',
      ])
    )
    const outside = files.filter(
      (file) =>
        !/^package\/(dist|bin|deploy)\/|^package\/[A-Z]+\.md$|^package\/(LICENSE|package\.json)$/.test(
          file
        )
    )
    expect(outside).toEqual([])
    expect(files.some((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).toBe(false)
  })

  it('runs its command without TypeScript: --help, test, and an unknown option', async () => {
    const help = await tidings(['--help'])
    expect(help.stdout).toMatch(/^Usage: tidings \[command\]/)
    const config = join(project, 'tidings.json')
    writeFileSync(
      config,
      JSON.stringify({
        servers: [
          { type: 'client', port: 1 },
          { type: 'admin', port: 2 },
        ],
      })
    )
    expect((await tidings(['test', '--config', config])).stdout).toBe('Configuration test OK.\n')
    const unknown = await tidings(['--nope']).catch(
      (error: { code: number; stderr: string }) => error
    )
    expect(unknown).toMatchObject({
      code: 2,
      stderr: 'tidings: Unknown option "--nope". Run `tidings --help` for usage.\n',
    })
    // tsx is a development tool only: not installed for users.
    expect(readdirSync(join(project, 'node_modules'))).not.toContain('tsx')
  })

  it('starts a node (a primary and two workers) that delivers a posted message to `tidings listen`', async () => {
    const [client, admin] = [await freePort(), await freePort()]
    const config = join(project, 'listen.json')
    writeFileSync(
      config,
      JSON.stringify({
        servers: [
          { type: 'client', port: client, listen: '127.0.0.1' },
          { type: 'admin', port: admin, listen: '127.0.0.1' },
        ],
        // Workers start from the installed package's own bin/ and dist/.
        processes: 2,
      })
    )
    const bin = join(project, 'node_modules/tidings/bin/tidings.js')
    const server = spawn(process.execPath, [bin, 'run', '--config', config], { cwd: project })
    try {
      await eventually(
        () =>
          fetch(`http://127.0.0.1:${admin}/readyz`).then(
            (r) => r.status,
            () => 0
          ),
        (status) => status === 200,
        20_000
      )
      const listener = spawn(
        process.execPath,
        [bin, 'listen', '--config', config, '--subscriber', 'PHID-PKG', '--count', '1'],
        { cwd: project }
      )
      let out = ''
      let err = ''
      listener.stdout.on('data', (chunk) => {
        out += chunk
      })
      listener.stderr.on('data', (chunk) => {
        err += chunk
      })
      const exited = new Promise<number | null>((resolve) => listener.on('exit', resolve))
      await eventually(
        () => err,
        (text) => text.includes('Listening on'),
        20_000
      )
      const sent = await tidings([
        'notify',
        '--config',
        config,
        '--subscriber',
        'PHID-PKG',
        '--message',
        'hi',
      ])
      expect(sent.stdout).toMatch(/^Sent notification\./)
      expect(await exited).toBe(0)
      expect(JSON.parse(out.trim())).toMatchObject({
        type: 'notification',
        message: 'hi',
        subscribers: ['PHID-PKG'],
      })
    } finally {
      server.kill('SIGKILL')
    }
  })

  it('imports every export from a script, and starts a node through tidings/node', async () => {
    const script = join(project, 'imports.mjs')
    writeFileSync(
      script,
      `import { startTidings, parseConfig } from 'tidings/node'
import { createPublisher } from 'tidings/publisher'
import { createClient } from 'tidings/browser'
import { createNode } from 'tidings/core'
const node = await startTidings({ servers: [{ type: 'client', port: 0, listen: '127.0.0.1' }, { type: 'admin', port: 0, listen: '127.0.0.1' }] }, { logger: 'silent' })
const publisher = createPublisher({ servers: [node.url('admin')] })
const receipt = await publisher.publish({ subscribers: ['P'] })
const status = node.status()
const reload = node.reload({ servers: [{ type: 'client', port: 0, listen: '127.0.0.1' }, { type: 'admin', port: 0, listen: '127.0.0.1' }], limits: { idBytes: 64 } })
await node.close()
console.log(JSON.stringify({ receipt: typeof receipt.fingerprint, in: status['messages.in'], reload, kinds: [typeof createClient, typeof createNode, typeof parseConfig] }))
`
    )
    const { stdout } = await inProject(process.execPath, [script])
    expect(JSON.parse(stdout)).toEqual({
      receipt: 'string',
      in: 1,
      reload: { applied: ['limits.idBytes'], restartNeeded: [] },
      kinds: ['function', 'function', 'function'],
    })
  })

  it('type-checks against the exported declarations', async () => {
    writeFileSync(
      join(project, 'check.ts'),
      `import { startTidings, type TidingsServer } from 'tidings/node'
import { createPublisher, type PublishResult } from 'tidings/publisher'
import { createClient, type TidingsMessage } from 'tidings/browser'
import { createNode, type Config } from 'tidings/core'
export const s: Promise<TidingsServer> = startTidings({ servers: [] })
export const p: (m: { subscribers: string[] }) => Promise<PublishResult> = createPublisher({ servers: ['http://x'] }).publish
export const c = createClient({ servers: ['ws://x'] }).on('message', (m: TidingsMessage) => m.type)
export const n: typeof createNode = createNode
export type C = Config
`
    )
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc')
    await inProject(process.execPath, [
      tsc,
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--lib',
      'es2022,dom',
      '--types',
      'node',
      '--typeRoots',
      join(ROOT, 'node_modules/@types'),
      'check.ts',
    ])
  })

  it("bundles tidings/workers into a Workers project of the user's own", async () => {
    const worker = join(project, 'worker')
    rmSync(worker, { recursive: true, force: true })
    await inProject('mkdir', ['-p', 'worker/src'])
    writeFileSync(
      join(worker, 'src/index.js'),
      "export { default, TidingsObject } from 'tidings/workers'\n"
    )
    writeFileSync(
      join(worker, 'wrangler.toml'),
      `name = "user-tidings"
main = "src/index.js"
compatibility_date = "2026-04-26"
[[durable_objects.bindings]]
name = "TIDINGS"
class_name = "TidingsObject"
[[migrations]]
tag = "v1"
new_sqlite_classes = ["TidingsObject"]
`
    )
    const out = join(worker, 'out')
    const wrangler = join(ROOT, 'node_modules/wrangler/bin/wrangler.js')
    await exec(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', out], {
      cwd: worker,
      timeout: 90_000,
      env: { ...process.env, ...OFFLINE_WRANGLER_ENV },
    })
    expect(readdirSync(out)).toContain('index.js')
  })
})
