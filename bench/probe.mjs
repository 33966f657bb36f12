/**
 * Bench-only instrumentation, preloaded into a server process by bench/run.ts with
 * `node --expose-gc --import ./bench/probe.mjs …`. It is never part of tidings itself: it
 * only listens on the IPC channel the bench opened (nothing on the network) and answers
 * `{probe: 'sample', gc?, reset?}` with process.cpuUsage(), RSS (after a forced GC when
 * asked) and event-loop delay (perf_hooks.monitorEventLoopDelay). The process dies with its
 * parent and after BENCH_MAX_MS. `{probe, profile: 'start'}` / `{probe, profile: 'stop', path}`
 * record a V8 CPU profile (bench --profile DIR).
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { monitorEventLoopDelay } from 'node:perf_hooks'

if (process.send) {
  const maxMs = Number(process.env.BENCH_MAX_MS ?? 600_000)
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), maxMs).unref()
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'))

  const delay = monitorEventLoopDelay({ resolution: 5 })
  delay.enable()
  let rssMax = 0
  setInterval(() => {
    const rss = process.memoryUsage.rss()
    if (rss > rssMax) rssMax = rss
  }, 50).unref()

  const collect = () => {
    if (typeof globalThis.gc !== 'function') return false
    // Twice: the first pass can leave garbage that only a second one reclaims.
    globalThis.gc()
    globalThis.gc()
    return true
  }

  let session
  const profile = (message) => {
    if (message.profile === 'start') {
      session = new Session()
      session.connect()
      session.post('Profiler.enable', () =>
        session.post('Profiler.start', () => process.send({ probe: message.probe, ok: true }))
      )
      return
    }
    session?.post('Profiler.stop', (error, result) => {
      if (!error) writeFileSync(message.path, JSON.stringify(result.profile))
      session.disconnect()
      session = undefined
      process.send({ probe: message.probe, ok: !error })
    })
  }

  process.on('message', (message) => {
    if (!message || typeof message !== 'object' || !('probe' in message)) return
    if ('profile' in message) {
      profile(message)
      return
    }
    const gc = message.gc === true ? collect() : false
    const memory = process.memoryUsage()
    const sample = {
      cpu: process.cpuUsage(),
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      rssMax: Math.max(rssMax, memory.rss),
      eldMax: delay.max / 1e6,
      eldP99: delay.percentile(99) / 1e6,
      gc,
    }
    if (message.reset === true) {
      delay.reset()
      rssMax = 0
    }
    process.send({ probe: message.probe, sample })
  })
  // The channel must not keep a stopping server alive.
  process.channel?.unref()
}
