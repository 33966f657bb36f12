/**
 * `tidings reload` / SIGHUP and the stop signals on real processes: what a reload applies,
 * what it reports as needing a restart, that a broken file changes nothing, and that
 * `tidings stop` drains (4000) while SIGINT closes at once (1001).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readPid } from '../../adapters/node/pidfile.ts'
import {
  fixedPortConfig,
  runCli,
  type Spawned,
  spawnCli,
  tempDir,
  writeConfig,
} from '../helpers/process.ts'
import { connect, eventually, type TestClient } from '../helpers/ws-client.ts'

async function setup() {
  const dir = tempDir()
  const made = await fixedPortConfig(dir, {
    logs: [{ path: join(dir, 'first.log') }],
    limits: { subscriptionsPerConnection: 10 },
    drain: { window: 300, waves: 3, lone: 'drain' },
  })
  return { dir, ...made }
}

const running: Spawned[] = []
const daemons: string[] = []
const clients: TestClient[] = []
afterEach(() => {
  for (const c of clients.splice(0)) c.ws.terminate()
  for (const spawned of running.splice(0)) spawned.child.kill('SIGKILL')
  for (const pidfile of daemons.splice(0)) {
    const pid = readPid(pidfile)
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
  }
})

describe('tidings reload and stop', { timeout: 60_000 }, () => {
  it('reloads a daemon: applies limits and logs live, names what needs a restart, stop drains', async () => {
    const { dir, client, config, path, adminUrl } = await setup()
    daemons.push(config.pidfile)
    const start = await runCli(['start', '--config', path])
    expect(start.code).toBe(0)
    const before = await connect(`ws://127.0.0.1:${client}/`)
    clients.push(before)

    writeConfig(dir, {
      ...config,
      servers: [config.servers[0], { ...config.servers[1], port: 1 }],
      logs: [{ path: join(dir, 'second.log') }],
      limits: { subscriptionsPerConnection: 2 },
    })
    // The CLI checks the file first, so the running config is not what it sends SIGHUP with.
    const reload = await runCli(['reload', '--config', path])
    expect(reload.stderr).toBe('')
    expect(reload.code).toBe(0)
    expect(reload.stdout).toMatch(
      /^tidings \(pid \d+\): Reloaded configuration from ".*tidings\.json": applied logs, limits\.subscriptionsPerConnection; needs a restart to change: servers\.\n$/
    )
    // Still listening where it was (servers need a restart), with the new limit in force.
    expect((await fetch(`${adminUrl}/readyz`)).status).toBe(200)
    const after = await connect(`ws://127.0.0.1:${client}/`)
    clients.push(after)
    after.send({ command: 'subscribe', data: ['a', 'b', 'c'] })
    expect((await after.closed).code).toBe(1008)
    // Log lines now go to the new file.
    await eventually(
      () => existsSync(join(dir, 'second.log')) && readFileSync(join(dir, 'second.log'), 'utf8'),
      (text) => typeof text === 'string' && text.includes('limits.subscriptionsPerConnection')
    )
    expect(readFileSync(join(dir, 'first.log'), 'utf8')).toContain('Caught SIGHUP, reloading')
    expect(readFileSync(join(dir, 'second.log'), 'utf8')).toContain('Reloaded configuration')

    const stop = await runCli(['stop', '--config', path])
    expect(stop.code).toBe(0)
    expect(stop.stdout).toContain('exited normally')
    expect(await before.closed).toEqual({ code: 4000, reason: 'draining' })
    expect(readFileSync(join(dir, 'second.log'), 'utf8')).toMatch(/Drained 1 client sockets/)
    // Nothing of the stopped daemon is left beside its pidfile, not even its last report.
    expect(existsSync(config.pidfile)).toBe(false)
    expect(existsSync(`${config.pidfile}.reload.json`)).toBe(false)
  })

  it('refuses to signal when the file is invalid, and reports a server that is not running', async () => {
    const { dir, config, path } = await setup()
    const notRunning = await runCli(['reload', '--config', path])
    expect(notRunning.code).toBe(1)
    expect(notRunning.stdout).toContain('tidings is not running.')
    writeConfig(dir, { ...config, limits: { subscriptionsPerConnection: 'ten' } })
    const invalid = await runCli(['reload', '--config', path])
    expect(invalid.code).toBe(1)
    expect(invalid.stderr).toMatch(/^tidings: .*subscriptionsPerConnection/)
    const help = await runCli(['reload', '--help'])
    expect(help.stdout).toMatch(/^Usage: tidings reload/)
  })

  it('keeps running unchanged when SIGHUP finds a broken file, and applies the fixed one', async () => {
    const { dir, client, config, path, adminUrl } = await setup()
    const server = spawnCli(['run', '--config', path])
    running.push(server)
    await server.waitFor(/has fingerprint/)
    writeFileSync(path, '{"servers": [')
    server.child.kill('SIGHUP')
    await server.waitFor(
      /Reload failed, the running configuration is unchanged: Configuration file is not properly formatted JSON/
    )
    expect((await fetch(`${adminUrl}/readyz`)).status).toBe(200)
    const ws = await connect(`ws://127.0.0.1:${client}/`)
    clients.push(ws)
    ws.send({ command: 'subscribe', data: ['a', 'b', 'c'] })
    await ws.ping()

    writeConfig(dir, { ...config, history: { size: 1 } })
    server.child.kill('SIGHUP')
    await server.waitFor(/Reloaded configuration from ".*": applied history\.size\./)
    expect((await fetch(`${adminUrl}/healthz`)).status).toBe(200)
  })

  it('closes sockets at once with 1001 on SIGINT', async () => {
    const { client, path } = await setup()
    const server = spawnCli(['run', '--config', path])
    running.push(server)
    await server.waitFor(/has fingerprint/)
    const ws = await connect(`ws://127.0.0.1:${client}/`)
    clients.push(ws)
    server.child.kill('SIGINT')
    expect((await ws.closed).code).toBe(1001)
    expect(await server.exited).toBe(0)
    expect(server.output()).toContain('Caught SIGINT, closing connections.')
  })
})
