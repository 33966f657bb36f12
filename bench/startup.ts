/**
 * `npm run bench:startup`: how fast `tidings` starts, as users get it — the compiled package
 * (bin/ and dist/ laid out as `npm install` lays them out, without the TypeScript sources) —
 * beside `node -e 0` in the same run:
 *
 *   - `tidings run`: from exec until both ports accept a TCP connection (polled every 2 ms);
 *   - `tidings test --config FILE`: from exec until it exits.
 *
 * Also the checkout's `node bin/tidings.js` (TypeScript through tsx), for comparison. Builds
 * the package first. Prints median and p90 of `--runs` (default 15) runs of each.
 */
import { spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { buildPackage } from '../scripts/build.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' } } })
const RUNS = Number(values.runs)

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Milliseconds from spawn until `ready` resolves (or the process exits, for exit: true). */
async function timeOnce(
  args: string[],
  until: { exit: true } | { ports: number[] }
): Promise<number> {
  const started = performance.now()
  const child = spawn(process.execPath, args, { stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  if ('exit' in until) {
    await exited
    return performance.now() - started
  }
  const deadline = started + 10_000
  for (;;) {
    const ready = await Promise.all(until.ports.map(accepts))
    if (ready.every(Boolean)) break
    if (performance.now() > deadline) throw new Error(`${args.join(' ')} did not listen in 10 s`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  const ms = performance.now() - started
  child.kill('SIGKILL')
  await exited
  return ms
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}

async function measure(
  label: string,
  args: string[],
  until: { exit: true } | { ports: number[] }
): Promise<string> {
  await timeOnce(args, until) // warm the file cache
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) times.push(await timeOnce(args, until))
  const median = quantile(times, 0.5)
  return `| ${label.padEnd(46)} | ${median.toFixed(0).padStart(6)} | ${quantile(times, 0.9).toFixed(0).padStart(6)} |`
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-startup-'))
  try {
    // The installed layout: the package's bin/ and dist/, its dependencies, no sources.
    const pkg = join(dir, 'node_modules', 'tidings')
    mkdirSync(pkg, { recursive: true })
    await buildPackage(join(pkg, 'dist'))
    cpSync(join(ROOT, 'bin'), join(pkg, 'bin'), { recursive: true })
    cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'))
    symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'))
    // Fixed ports below the ephemeral range (the polling must know where to knock).
    const client = 24_380 + Math.floor(Math.random() * 500) * 2
    const ports = [client, client + 1]
    const config = join(dir, 'tidings.json')
    writeFileSync(
      config,
      JSON.stringify({
        servers: [
          { type: 'client', port: ports[0], listen: '127.0.0.1' },
          { type: 'admin', port: ports[1], listen: '127.0.0.1' },
        ],
      })
    )
    const installed = join(pkg, 'bin/tidings.js')
    const checkout = join(ROOT, 'bin/tidings.js')
    const rows = [
      await measure('node -e 0', ['-e', '0'], { exit: true }),
      await measure(
        'tidings test --config FILE (package)',
        [installed, 'test', '--config', config],
        {
          exit: true,
        }
      ),
      await measure(
        'tidings run: both ports listening (package)',
        [installed, 'run', '--config', config],
        {
          ports,
        }
      ),
      await measure(
        'tidings run: both ports listening (checkout, tsx)',
        [checkout, 'run', '--config', config],
        {
          ports,
        }
      ),
    ]
    process.stdout.write(
      `\nStart-up, ${RUNS} runs each (${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}):\n\n| command | median ms | p90 ms |\n|---|--:|--:|\n${rows.join('\n')}\n`
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
