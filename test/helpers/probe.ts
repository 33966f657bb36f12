/**
 * A connection probe: opens a WebSocket every `everyMs`, one at a time, until stopped, and
 * records each attempt that did not open within `openMs` (refused, reset, or silent) with
 * when it happened. For restarts that must refuse nothing (test/node/restart.test.ts and
 * `npm run bench:restart`).
 */
import WebSocket from 'ws'

export function connectProbe(url: string, everyMs: number, openMs: number) {
  const result = { attempts: 0, opened: 0, failed: [] as { at: number; error: string }[] }
  let running = true
  const done = (async () => {
    while (running) {
      result.attempts++
      await new Promise<void>((resolve) => {
        const ws = new WebSocket(url, { localAddress: '127.0.0.1' })
        const timer = setTimeout(() => {
          result.failed.push({ at: Date.now(), error: `no open within ${openMs} ms` })
          ws.terminate()
          resolve()
        }, openMs)
        ws.on('open', () => {
          clearTimeout(timer)
          result.opened++
          ws.close()
          resolve()
        })
        ws.on('error', (error) => {
          clearTimeout(timer)
          result.failed.push({ at: Date.now(), error: error.message })
          resolve()
        })
      })
      await new Promise((resolve) => setTimeout(resolve, everyMs))
    }
  })()
  return {
    result,
    stop: async () => {
      running = false
      await done
    },
  }
}
