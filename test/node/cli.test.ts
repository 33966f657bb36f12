import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  fixedPortConfig,
  freePort,
  runCli,
  type Spawned,
  spawnCli,
  tempDir,
  writeConfig,
} from '../helpers/process.ts'
import { connect, eventually } from '../helpers/ws-client.ts'

const STACK = /\n\s+at /

const running: Spawned[] = []
afterEach(() => {
  for (const spawned of running.splice(0)) spawned.child.kill('SIGKILL')
})

describe('tidings CLI', { timeout: 30_000 }, () => {
  it('validates the embedded default with `test`', async () => {
    const result = await runCli(['test'])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('Configuration test OK.\n')
  })

  it("accepts aphlict_server.js's own flags: --config=FILE --test=true", async () => {
    const dir = tempDir()
    const { path } = await fixedPortConfig(dir)
    const result = await runCli([`--config=${path}`, '--test=true'])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('Configuration test OK.')
  })

  it('prints one clear line, no stack, and exits 1 for a config mistake', async () => {
    const dir = tempDir()
    const cases: [unknown, RegExp][] = [
      ['{"servers": [', /^tidings: Configuration file is not properly formatted JSON\./],
      [
        {
          servers: [
            { type: 'client', port: 1 },
            { type: 'admin', port: 1 },
          ],
        },
        /^tidings: Two servers \(at indexes "0" and "1"\) both bind to the same port \("1"\)/,
      ],
      [
        { servers: [{ type: 'client', port: 'x' }] },
        /^tidings: Server \(at index "0"\): Parameter 'port' has invalid type/,
      ],
      [
        {
          servers: [
            { type: 'client', port: 1, listen: '1.2.3.4:80' },
            { type: 'admin', port: 2 },
          ],
        },
        /^tidings: A specified server \(at index "0", on port "1"\) has an invalid "listen" value \("1\.2\.3\.4:80"\)/,
      ],
      [
        // A name that never resolves (RFC 6761): caught by `test`, not left to bind time.
        {
          servers: [
            { type: 'client', port: 1 },
            { type: 'admin', port: 2, listen: 'not-an-ip.invalid' },
          ],
        },
        /^tidings: A specified server \(at index "1", on port "2"\) listens on "not-an-ip\.invalid", which does not resolve/,
      ],
    ]
    for (const [config, pattern] of cases) {
      // The resolver may wait for its own timeouts (resolv.conf: 5 s × attempts) on a
      // machine without DNS; the answer is still bounded.
      const result = await runCli(['test', '--config', writeConfig(dir, config)], 60_000)
      expect(result.code).toBe(1)
      expect(result.stderr).toMatch(pattern)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(result.stderr).not.toMatch(STACK)
    }
    const missing = await runCli(['test', '--config', join(dir, 'nope.json')])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(
      /Failed to read configuration file ".*nope\.json"\. No such file\./
    )
  })

  it('exits 2 with usage help for an unknown command or option', async () => {
    const command = await runCli(['frobnicate'])
    expect(command.code).toBe(2)
    expect(command.stderr).toMatch(/Unknown command "frobnicate"/)
    const option = await runCli(['run', '--colour'])
    expect(option.code).toBe(2)
    expect(option.stderr).not.toMatch(STACK)
  })

  it('prints help for every command', async () => {
    for (const command of [
      '',
      'run',
      'debug',
      'start',
      'stop',
      'restart',
      'status',
      'test',
      'notify',
      'listen',
      'reload',
    ]) {
      const result = await runCli([...(command ? [command] : []), '--help'])
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(/^Usage: tidings/)
    }
  })

  it('starts a daemon, reports status, refuses a second start and stops it', async () => {
    const dir = tempDir()
    const { config, path } = await fixedPortConfig(dir)
    const start = await runCli(['start', '--config', path])
    expect(start.stderr).toBe('')
    expect(start.code).toBe(0)
    const pid = Number(/pid (\d+)/.exec(start.stdout)?.[1])
    expect(readFileSync(config.pidfile, 'utf8').trim()).toBe(String(pid))

    const status = await runCli(['status', '--config', path])
    expect(status.code).toBe(0)
    expect(status.stdout).toContain(`tidings (pid ${pid}) is running.`)
    expect(status.stdout).toContain('"version":7')

    const again = await runCli(['start', '--config', path])
    expect(again.code).toBe(1)
    expect(again.stdout).toContain(`already running (pid ${pid})`)

    const stop = await runCli(['stop', '--config', path])
    expect(stop.code).toBe(0)
    expect(stop.stdout).toContain('exited normally')
    expect(existsSync(config.pidfile)).toBe(false)
    expect(() => process.kill(pid, 0)).toThrow()

    const after = await runCli(['status', '--config', path])
    expect(after.code).toBe(1)
    expect(after.stdout).toContain('not running')
    expect(readFileSync(config.logs[0]?.path as string, 'utf8')).toMatch(
      /Started admin server \(Port \d+, No SSL\)\./
    )
  })

  it('names the log or pidfile directory it cannot create, without a stack', async () => {
    const dir = tempDir()
    writeConfig(dir, 'not a directory', 'blocker')
    const { path: logConfig } = await fixedPortConfig(dir, {
      logs: [{ path: join(dir, 'blocker', 'tidings.log') }],
    })
    const run = await runCli(['run', '--config', logConfig])
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(
      /^tidings: Failed to create directory ".*blocker" for specified log file \(with index "0"\)\. .*(EEXIST|ENOTDIR)/
    )
    expect(run.stderr).not.toMatch(STACK)
    const { path: pidConfig } = await fixedPortConfig(dir, {
      pidfile: join(dir, 'blocker', 'run', 'tidings.pid'),
    })
    const start = await runCli(['start', '--config', pidConfig])
    expect(start.code).toBe(1)
    expect(start.stdout).toMatch(
      /Failed to create directory ".*blocker\/run" for specified PID file\. .*(EEXIST|ENOTDIR)/
    )
    expect(start.stdout).not.toMatch(STACK)
  })

  it('restarts a daemon: a new process on the same sockets, the old one gone', async () => {
    const dir = tempDir()
    const { config, path } = await fixedPortConfig(dir, { drain: { window: 0 } })
    const start = await runCli(['start', '--config', path])
    expect(start.code).toBe(0)
    const first = Number(/pid (\d+)/.exec(start.stdout)?.[1])
    const restart = await runCli(['restart', '--config', path], 60_000)
    expect(restart.code).toBe(0)
    expect(restart.stdout).toMatch(
      /^Restarting tidings \(pid \d+\)\.\.\.\ntidings restarted \(pid \d+ → \d+\); the old process is draining its sockets\.\n$/
    )
    const second = Number(/→ (\d+)\)/.exec(restart.stdout)?.[1])
    expect(second).not.toBe(first)
    await eventually(
      () => {
        try {
          process.kill(first, 0)
          return false
        } catch {
          return true
        }
      },
      (gone) => gone
    )
    expect(readFileSync(config.pidfile, 'utf8').trim()).toBe(String(second))
    expect((await runCli(['status', '--config', path])).code).toBe(0)
    expect((await runCli(['stop', '--config', path])).code).toBe(0)
  })

  it('replaces a stale pidfile on start', async () => {
    const dir = tempDir()
    const { config, path } = await fixedPortConfig(dir)
    mkdirSync(join(dir, 'run'))
    writeConfig(join(dir, 'run'), '999999999\n', 'tidings.pid') // no such process
    const start = await runCli(['start', '--config', path])
    expect(start.code).toBe(0)
    const pid = Number(/pid (\d+)/.exec(start.stdout)?.[1])
    expect(readFileSync(config.pidfile, 'utf8').trim()).toBe(String(pid))
    expect((await runCli(['stop', '--config', path])).code).toBe(0)
  })

  it('fails start-up with exit 1 and a clear message when a port is taken, leaving nothing running', async () => {
    const dir = tempDir()
    const { admin, client, path } = await fixedPortConfig(dir)
    const blocker: Server = createServer()
    await new Promise<void>((resolve) => blocker.listen(admin, '127.0.0.1', resolve))
    try {
      for (const args of [
        ['start', '--config', path],
        ['run', '--config', path],
      ]) {
        const result = await runCli(args)
        expect(result.code).toBe(1)
        expect(result.stdout + result.stderr).toMatch(
          new RegExp(
            `Unable to listen on 127\\.0\\.0\\.1:${admin} for the admin server \\(at index "1"\\): address already in use`
          )
        )
        expect(result.stderr).not.toMatch(STACK)
        await expect(connect(`ws://127.0.0.1:${client}/`, 1000)).rejects.toThrow()
      }
    } finally {
      blocker.close()
    }
  })

  it('sends the configured secret with `notify`, which a node requiring it accepts', async () => {
    const dir = tempDir()
    const { client, path } = await fixedPortConfig(dir, {
      secret: 's3cret-value',
      drain: { window: 0 },
    })
    const server = spawnCli(['--config', path])
    running.push(server)
    await server.waitFor(/This server has fingerprint/)
    const ws = await connect(`ws://127.0.0.1:${client}/`)
    ws.send({ command: 'subscribe', data: ['PHID-USER-secret'] })
    await ws.ping()
    const notify = await runCli(['notify', '--config', path, '--subscriber', 'PHID-USER-secret'])
    expect(notify.code).toBe(0)
    expect((await ws.next()).subscribers).toEqual(['PHID-USER-secret'])
    const without = await runCli([
      'notify',
      '--config',
      writeConfig(
        dir,
        { ...JSON.parse(readFileSync(path, 'utf8')), secret: 'wrong' },
        'wrong.json'
      ),
      '--subscriber',
      'x',
    ])
    expect(without.code).toBe(1)
    expect(without.stdout).toMatch(/answered 401: .*"unauthorized"/)
    await ws.close()
  })

  it('runs in the foreground, delivers `notify`, and exits 0 on SIGTERM after draining sockets with 4000', async () => {
    const dir = tempDir()
    const { client, path } = await fixedPortConfig(dir, { drain: { window: 200, lone: 'drain' } })
    const server = spawnCli(['--config', path])
    running.push(server)
    await server.waitFor(/This server has fingerprint/)
    const ws = await connect(`ws://127.0.0.1:${client}/`)
    ws.send({ command: 'subscribe', data: ['PHID-USER-cli'] })
    await ws.ping()
    const notify = await runCli([
      'notify',
      '--config',
      path,
      '--subscriber',
      'PHID-USER-cli',
      '--message',
      'hello',
    ])
    expect(notify.code).toBe(0)
    expect(notify.stdout).toMatch(/Sent notification\. Receipt: \{"fingerprint":"\w{16}"\}/)
    expect(await ws.next()).toMatchObject({
      type: 'notification',
      message: 'hello',
      subscribers: ['PHID-USER-cli'],
    })
    server.child.kill('SIGTERM')
    expect(await ws.closed).toEqual({ code: 4000, reason: 'draining' })
    expect(await server.exited).toBe(0)
  })

  it('`listen` prints what arrives on an instance, and says why it stops when refused or closed', async () => {
    const dir = tempDir()
    const { client, path } = await fixedPortConfig(dir, {
      limits: { subscriptionsPerConnection: 2 },
    })
    const server = spawnCli(['--config', path])
    running.push(server)
    await server.waitFor(/This server has fingerprint/)
    const listener = spawnCli([
      'listen',
      '--config',
      path,
      '--instance',
      'beta',
      '--subscriber',
      'PHID-L',
      '--count',
      '2',
    ])
    running.push(listener)
    await listener.waitFor(/Listening on ws:\/\/127\.0\.0\.1:\d+\/~beta\/ for PHID-L\./)
    // The default instance's copy does not reach it; the instance's two do, one line each.
    const posts: [string, string][] = [
      ['default', 'no'],
      ['beta', 'one'],
      ['beta', 'two'],
    ]
    for (const [instance, message] of posts) {
      const args = ['notify', '--config', path, '--subscriber', 'PHID-L', '--message', message]
      expect((await runCli([...args, '--instance', instance])).code).toBe(0)
    }
    expect(await listener.exited).toBe(0)
    const lines = listener
      .stdout()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    expect(lines.map((line) => line.message)).toEqual(['one', 'two'])

    // Three ids against a limit of two: the server closes with 1008, which `listen` reports.
    const over = await runCli([
      'listen',
      '--config',
      path,
      '--subscriber',
      'a',
      '--subscriber',
      'b',
      '--subscriber',
      'c',
    ])
    expect(over.code).toBe(1)
    expect(over.stderr).toMatch(/Closed by the server: 1008 subscription_limit/)
    // Nothing listening: one line naming the address, no stack trace.
    const nobody = await freePort(new Set([client]))
    const refused = await runCli([
      'listen',
      '--subscriber',
      'x',
      '--server',
      `ws://127.0.0.1:${nobody}/`,
    ])
    expect(refused.code).toBe(1)
    expect(refused.stderr.trim()).toMatch(
      /^Connection to ws:\/\/127\.0\.0\.1:\d+\/ failed: connect ECONNREFUSED/
    )
    expect(refused.stderr).not.toMatch(STACK)
  })

  it('traces connections with --debug=1 and writes JSON log lines with --log-format json', async () => {
    const dir = tempDir()
    const { client, config, path } = await fixedPortConfig(dir)
    const server = spawnCli([`--config=${path}`, '--debug=1', '--log-format', 'json'])
    running.push(server)
    await server.waitFor(/fingerprint/)
    const ws = await connect(`ws://127.0.0.1:${client}/~alpha/`)
    await server.waitFor(/<Listener\/1\/alpha> Connected from 127\.0\.0\.1\./)
    await ws.close()
    server.child.kill('SIGTERM')
    expect(await server.exited).toBe(0)
    const lines = readFileSync(config.logs[0]?.path as string, 'utf8')
      .trim()
      .split('\n')
    for (const line of lines)
      expect(JSON.parse(line)).toMatchObject({
        time: expect.any(String),
        level: expect.any(String),
        msg: expect.any(String),
      })
    expect(lines.some((line) => line.includes('Disconnected.'))).toBe(true)
  })
})
