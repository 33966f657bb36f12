/**
 * Test-harness instrumentation for scripts/fuzz.ts and scripts/soak.ts, preloaded into the
 * server they start with `node --expose-gc --import <this file>`. It is never part of
 * tidings: it only answers `{probe: 'memory', gc}` on the IPC channel its parent opened
 * (nothing on the network) with process.memoryUsage(), after two full GCs when asked, and
 * it ends the process when the parent goes away, so a killed harness leaves no server behind.
 */
// Not in a node's worker processes (`tidings worker`, forked with the primary's flags): their
// IPC channel is the primary's, and they end when it goes.
if (process.send && process.argv[2] !== 'worker') {
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'))
  process.on('message', (message) => {
    if (!message || typeof message !== 'object' || message.probe !== 'memory') return
    const collected = message.gc === true && typeof globalThis.gc === 'function'
    if (collected) {
      globalThis.gc()
      globalThis.gc()
    }
    const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage()
    process.send({ probe: 'memory', collected, rss, heapUsed, heapTotal, external, arrayBuffers })
  })
  // The channel must not keep a stopping server alive.
  process.channel?.unref()
}
