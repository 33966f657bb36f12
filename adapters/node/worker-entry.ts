/** Where a worker process starts: this package's `tidings` command, wherever it is installed. */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let found: string | undefined

/** `bin/tidings.js` of the package this module belongs to (a checkout or an install). */
export function workerEntry(): string {
  if (found) return found
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = join(dir, 'bin', 'tidings.js')
    if (existsSync(candidate)) {
      found = candidate
      return candidate
    }
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot find bin/tidings.js to start worker processes')
    dir = parent
  }
}
