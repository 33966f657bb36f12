/** Loading the configuration: a JSON file given with --config, or the embedded default. */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { DEFAULT_CONFIG } from '../../src/config/defaults.ts'
import { parseConfig, parseConfigText } from '../../src/config/parse.ts'
import type { Config } from '../../src/config/schema.ts'
import { ConfigError } from '../../src/errors.ts'

export interface LoadedConfig {
  config: Config
  /** Absolute path of the file, or undefined for the embedded default. */
  path: string | undefined
}

export function loadConfig(path: string | undefined): LoadedConfig {
  if (path === undefined) return { config: parseConfig(structuredClone(DEFAULT_CONFIG)), path }
  const absolute = resolve(path)
  let text: string
  try {
    text = readFileSync(absolute, 'utf8')
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'No such file.'
        : (error as Error).message
    throw new ConfigError(`Failed to read configuration file "${absolute}". ${reason}`)
  }
  return { config: parseConfigText(text), path: absolute }
}
