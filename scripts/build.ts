/**
 * `npm run build` (also run by `npm pack` through `prepack`): the package as it ships, in dist/.
 *
 *   dist/src, dist/clients, dist/adapters/node, dist/node-entry.js
 *                                 plain ESM JavaScript with .d.ts (tsconfig.build.json)
 *   dist/adapters/workers         the same for Workers (tsconfig.build.workers.json)
 *   dist/bundles/browser.min.js   tidings/browser as one minified ESM file, for a <script type=module>
 *   dist/bundles/browser.global.min.js   the same as an IIFE exposing `TidingsBrowser`
 *
 * It prints the sizes of the browser bundles. `npx tsx scripts/build.ts [outdir]`.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'
import { type BuildOptions, build } from 'esbuild'

const ROOT = resolve(fileURLToPath(import.meta.url), '../..')
const BROWSER_ENTRY = join(ROOT, 'clients/browser.ts')
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')

/** One self-contained file per entry, for browsers. */
const bundle: BuildOptions = {
  bundle: true,
  platform: 'neutral',
  target: 'es2022',
  legalComments: 'none',
  logLevel: 'silent',
  entryPoints: [BROWSER_ENTRY],
  minify: true,
}

/** The minified browser client as ESM text (what dist/bundles/browser.min.js holds). */
export async function bundleBrowserClient(): Promise<string> {
  const result = await build({ ...bundle, format: 'esm', write: false })
  return (result.outputFiles[0] as { text: string }).text
}

export interface BuiltFile {
  file: string
  bytes: number
  gzipBytes: number
}

function sizeOf(path: string): BuiltFile {
  const data = readFileSync(path)
  return { file: path, bytes: data.byteLength, gzipBytes: gzipSync(data, { level: 9 }).byteLength }
}

function compile(project: string, outdir: string): void {
  execFileSync(process.execPath, [TSC, '-p', join(ROOT, project), '--outDir', outdir], {
    stdio: 'inherit',
  })
}

/** Builds the package into `outdir`; returns the browser bundles with their sizes. */
export async function buildPackage(outdir = join(ROOT, 'dist')): Promise<BuiltFile[]> {
  rmSync(outdir, { recursive: true, force: true })
  mkdirSync(join(outdir, 'bundles'), { recursive: true })
  compile('tsconfig.build.json', outdir)
  compile('tsconfig.build.workers.json', outdir)
  const esm = join(outdir, 'bundles/browser.min.js')
  const global = join(outdir, 'bundles/browser.global.min.js')
  await Promise.all([
    build({ ...bundle, format: 'esm', outfile: esm }),
    build({ ...bundle, format: 'iife', globalName: 'TidingsBrowser', outfile: global }),
  ])
  return [sizeOf(esm), sizeOf(global)]
}

async function main(): Promise<void> {
  const outdir = resolve(process.argv[2] ?? join(ROOT, 'dist'))
  const files = await buildPackage(outdir)
  process.stdout.write(`Built into ${outdir}; browser bundles:\n`)
  for (const { file, bytes, gzipBytes } of files) {
    const name = file.slice(outdir.length + 1).padEnd(32)
    process.stdout.write(
      `  ${name} ${String(bytes).padStart(6)} bytes, ${String(gzipBytes).padStart(5)} gzipped\n`
    )
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`build: ${(error as Error).message}\n`)
    process.exit(1)
  })
}
