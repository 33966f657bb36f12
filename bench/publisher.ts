/**
 * The publisher: POSTs to the admin endpoint over an undici Pool with a fixed number of
 * requests in flight. Every body carries `bt`, the µs timestamp taken just before the
 * request is issued, which clients subtract from their receipt time.
 */
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'

export const clockMicros = (): number =>
  Math.round((performance.timeOrigin + performance.now()) * 1000)

export interface PublishResult {
  sent: number
  failed: number
  /** µs timestamps of the first request and of the last answer. */
  startedAt: number
  endedAt: number
}

export class Publisher {
  readonly #pool: Pool

  constructor(
    readonly adminUrl: string,
    readonly inflight: number
  ) {
    this.#pool = new Pool(adminUrl, { connections: inflight, pipelining: 1 })
  }

  /** Sends `count` POSTs, `inflight` at a time; `subscribers(i)` picks each one's targets. */
  async run(
    count: number,
    subscribers: (i: number) => string[],
    pad: string,
    timeoutMs: number
  ): Promise<PublishResult> {
    let next = 0
    let failed = 0
    const startedAt = clockMicros()
    const deadline = Date.now() + timeoutMs
    const worker = async (): Promise<void> => {
      while (next < count && Date.now() < deadline) {
        const i = next++
        const body = `{"type":"notification","key":"${i}","subscribers":${JSON.stringify(subscribers(i))},"bt":${clockMicros()}${pad}}`
        try {
          const response = await this.#pool.request({
            method: 'POST',
            path: '/?instance=bench',
            headers: { 'content-type': 'application/json' },
            body,
            headersTimeout: 30_000,
            bodyTimeout: 30_000,
          })
          await response.body.text()
          if (response.statusCode !== 200) failed++
        } catch {
          failed++
        }
      }
    }
    await Promise.all(Array.from({ length: this.inflight }, worker))
    return { sent: next, failed, startedAt, endedAt: clockMicros() }
  }

  close(): Promise<void> {
    return this.#pool.close()
  }
}

/** `,"pad":"xxxx"` making a message body `bytes` longer (empty for 0). */
export function padding(bytes: number): string {
  return bytes > 0 ? `,"pad":"${'x'.repeat(Math.max(0, bytes - 9))}"` : ''
}
