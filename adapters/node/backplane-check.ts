/** `tidings test --connect`: can the configured backplane be used? Binds nothing. */
import type { Config } from '../../src/config/schema.ts'
import { backplaneFailure } from './backplane-failure.ts'
import { redisBrokerFactory } from './redis-broker.ts'
import { StartupError } from './startup-error.ts'

/** One line saying the broker was reached; a StartupError naming the key and cause if not. */
export async function checkBackplane(config: Config): Promise<string> {
  if (!config.backplane) return 'No backplane is configured; nothing to connect to.'
  const broker = redisBrokerFactory(config.backplane)({ message() {}, down() {}, up() {} })
  try {
    await broker.connect()
    const skew = Math.abs((await broker.time()) - Date.now())
    return `Backplane reachable (${config.backplane.type}); its clock is ${skew} ms from this one.`
  } catch (error) {
    throw new StartupError(backplaneFailure(config, (error as Error).message))
  } finally {
    await broker.close()
  }
}
