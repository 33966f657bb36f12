// Prints vitest's JSON report as one closing line: "tests: N passed, N failed, N skipped".
import { readFileSync } from 'node:fs'

const path = process.argv[2]
let report
try {
  report = JSON.parse(readFileSync(path, 'utf8'))
} catch {
  console.log('tests: 0 passed, 1 failed (no test report was written)')
  process.exit(1)
}
const skipped = report.numPendingTests + report.numTodoTests
console.log(
  `tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`
)
process.exit(report.numFailedTests > 0 || report.numTotalTests === 0 ? 1 : 0)
