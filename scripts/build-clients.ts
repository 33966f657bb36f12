/**
 * Builds the client libraries into dist/ and prints the browser client's size:
 *
 *   dist/publisher.js            tidings/publisher, ESM bundle (no dependencies)
 *   dist/browser.js              tidings/browser, ESM bundle
 *   dist/browser.min.js          the same, minified (the size reported below)
 *   dist/browser.global.min.js   minified IIFE exposing `TidingsBrowser`, for a plain <script>
 *   dist/types/…                 declarations for both
 *
 * Run: `npm run build` (or `npx tsx scripts/build-clients.ts [outdir]`).
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'
import { type BuildOptions, build } from 'esbuild'

const ROOT = resolve(fileURLToPath(import.meta.url), '../..')
const BROWSER_ENTRY = join(ROOT, 'clients/browser.ts')
const PUBLISHER_ENTRY = join(ROOT, 'clients/publisher.ts')

/** Shared esbuild settings: one self-contained file per entry, for browsers, Workers, Deno, Node. */
const common: BuildOptions = {
  bundle: true,
  platform: 'neutral',
  target: 'es2022',
  legalComments: 'none',
  logLevel: 'silent',
}

/** The minified browser client as ESM text (what dist/browser.min.js holds). */
export async function bundleBrowserClient(): Promise<string> {
  const result = await build({
    ...common,
    entryPoints: [BROWSER_ENTRY],
    format: 'esm',
    minify: true,
    write: false,
  })
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

/** Declarations for both entries, with `.ts` import paths rewritten to `.js` (→ the `.d.ts`). */
function emitDeclarations(outdir: string): void {
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc')
  const types = join(outdir, 'types')
  execFileSync(
    process.execPath,
    [
      tsc,
      '--ignoreConfig',
      BROWSER_ENTRY,
      PUBLISHER_ENTRY,
      '--declaration',
      '--emitDeclarationOnly',
      '--outDir',
      types,
      '--rootDir',
      ROOT,
      '--target',
      'ES2022',
      '--module',
      'ESNext',
      '--moduleResolution',
      'bundler',
      '--lib',
      'ES2022,DOM',
      '--types',
      'node',
      '--allowImportingTsExtensions',
      '--strict',
      '--skipLibCheck',
    ],
    { stdio: 'inherit' }
  )
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (name.endsWith('.d.ts')) {
        const text = readFileSync(path, 'utf8')
        writeFileSync(path, text.replace(/(from '\.{1,2}\/[^']+)\.ts'/g, "$1.js'"))
      }
    }
  }
  walk(types)
}

/** Builds everything into `outdir` and returns the JS files with their sizes. */
export async function buildClients(outdir = join(ROOT, 'dist')): Promise<BuiltFile[]> {
  rmSync(outdir, { recursive: true, force: true })
  mkdirSync(outdir, { recursive: true })
  const out = (name: string): string => join(outdir, name)
  await Promise.all([
    build({
      ...common,
      entryPoints: [PUBLISHER_ENTRY],
      format: 'esm',
      outfile: out('publisher.js'),
    }),
    build({ ...common, entryPoints: [BROWSER_ENTRY], format: 'esm', outfile: out('browser.js') }),
    build({
      ...common,
      entryPoints: [BROWSER_ENTRY],
      format: 'esm',
      minify: true,
      outfile: out('browser.min.js'),
    }),
    build({
      ...common,
      entryPoints: [BROWSER_ENTRY],
      format: 'iife',
      globalName: 'TidingsBrowser',
      minify: true,
      outfile: out('browser.global.min.js'),
    }),
  ])
  emitDeclarations(outdir)
  return ['publisher.js', 'browser.js', 'browser.min.js', 'browser.global.min.js'].map((name) =>
    sizeOf(out(name))
  )
}

async function main(): Promise<void> {
  const outdir = resolve(process.argv[2] ?? join(ROOT, 'dist'))
  const files = await buildClients(outdir)
  const width = Math.max(...files.map((f) => f.file.length)) - outdir.length
  process.stdout.write(`Built into ${outdir}:\n`)
  for (const { file, bytes, gzipBytes } of files) {
    const name = file.slice(outdir.length + 1).padEnd(width)
    process.stdout.write(
      `  ${name} ${String(bytes).padStart(6)} bytes, ${String(gzipBytes).padStart(5)} gzipped\n`
    )
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`build-clients: ${(error as Error).message}\n`)
    process.exit(1)
  })
}
