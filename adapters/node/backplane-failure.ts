/** The start-up error of a backplane that cannot be used, for `run` and `test --connect`. */
import { redactUrl } from '../../src/config/parse.ts'
import type { Config } from '../../src/config/schema.ts'

/** One line naming the backplane key and the broker's reason (no credentials). */
export function backplaneFailure(config: Config, reason: string): string {
  const backplane = config.backplane
  const where =
    backplane?.type === 'redis-cluster'
      ? `"backplane.nodes" ${(backplane.nodes ?? []).map(redactUrl).join(', ')}`
      : `"backplane.url" ${redactUrl(backplane?.url ?? '')}`
  return `Unable to use the backplane (${where}): ${reason}.`
}
