/** Node entry point: the `tidings` command line (see adapters/node/cli.ts). */
import { main } from './adapters/node/cli.ts'

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (error: unknown) => {
    process.stderr.write(
      `tidings: unexpected error: ${error instanceof Error ? error.stack : String(error)}\n`
    )
    process.exit(1)
  }
)
