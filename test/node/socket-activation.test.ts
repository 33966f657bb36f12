/**
 * systemd socket activation (deploy/tidings.socket): tidings takes listening sockets it is
 * given (LISTEN_FDS/LISTEN_PID, descriptors 3, 4, … in the order of `servers`) instead of
 * binding its configured ports. Here the test plays systemd: it binds the sockets and
 * starts `tidings run` with them.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir, writeConfig } from '../helpers/process.ts'
import { connect } from '../helpers/ws-client.ts'

const BIN = fileURLToPath(new URL('../../bin/tidings.js', import.meta.url))
const running: ChildProcess[] = []
afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGKILL')
})

async function listening(): Promise<{ server: Server; port: number; fd: number }> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd
  return { server, port: (server.address() as { port: number }).port, fd }
}

/** Starts `tidings run` as systemd would: the sockets at 3, 4, … and LISTEN_PID its own pid. */
function activated(path: string, fds: number[]) {
  // LISTEN_PID must be the pid of the process that reads it: the shell's, which exec keeps.
  const child = spawn(
    'sh',
    [
      '-c',
      `LISTEN_PID=$$ LISTEN_FDS=${fds.length} exec "${process.execPath}" "${BIN}" run --config "${path}"`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe', ...fds] }
  )
  let output = ''
  child.stdout?.on('data', (chunk) => {
    output += chunk
  })
  child.stderr?.on('data', (chunk) => {
    output += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  return { child, output: () => output, exited }
}

describe('systemd socket activation', { timeout: 60_000 }, () => {
  it('serves on the sockets it is given, in the order of servers', async () => {
    const client = await listening()
    const admin = await listening()
    const dir = tempDir()
    // The configured ports are only names now: nothing listens on them.
    const path = writeConfig(dir, {
      servers: [
        { type: 'client', port: 1, listen: '127.0.0.1' },
        { type: 'admin', port: 2, listen: '127.0.0.1' },
      ],
    })
    const node = activated(path, [client.fd, admin.fd])
    running.push(node.child)
    // The sockets are the child's now; this process must not accept on them.
    client.server.close()
    admin.server.close()
    const deadline = Date.now() + 15_000
    while (!/has fingerprint/.test(node.output()) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(node.output()).toContain(`Started client server (Port ${client.port}, No SSL).`)
    expect(node.output()).toContain(`Started admin server (Port ${admin.port}, No SSL).`)
    const ws = await connect(`ws://127.0.0.1:${client.port}/`)
    ws.send({ command: 'subscribe', data: ['P'] })
    await ws.ping()
    const posted = await fetch(`http://127.0.0.1:${admin.port}/`, {
      method: 'POST',
      body: '{"key":"activated","subscribers":["P"]}',
    })
    expect(posted.status).toBe(200)
    expect((await ws.next()).key).toBe('activated')
    await ws.close()
  })

  it('refuses to start when the sockets do not match the servers', async () => {
    const only = await listening()
    const dir = tempDir()
    const path = writeConfig(dir, {
      servers: [
        { type: 'client', port: 1, listen: '127.0.0.1' },
        { type: 'admin', port: 2, listen: '127.0.0.1' },
      ],
    })
    const node = activated(path, [only.fd])
    running.push(node.child)
    only.server.close()
    expect(await node.exited).toBe(1)
    expect(node.output()).toMatch(
      /tidings: This process was given 1 listening sockets \(systemd LISTEN_FDS\) but the configuration has 2 servers; give one socket per server, in the order of "servers"\./
    )
  })
})
