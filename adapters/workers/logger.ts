/**
 * Logging on Workers goes to the console, which `wrangler tail` and Workers Logs collect.
 * Each line names the object (instance and shard) it comes from.
 */
import type { Logger } from '../../src/ports.ts'

export class ConsoleLogger implements Logger {
  constructor(
    readonly tracing: boolean,
    private readonly prefix = ''
  ) {}

  log(message: string): void {
    console.log(`${this.prefix}${message}`)
  }

  warn(message: string): void {
    console.warn(`${this.prefix}${message}`)
  }

  trace(message: string): void {
    if (this.tracing) console.log(`${this.prefix}${message}`)
  }
}
