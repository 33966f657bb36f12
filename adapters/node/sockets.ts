/** Node socket chores: the heartbeat, and waiting for closing sockets and servers. */
import type { Server } from 'node:http'
import type { Server as NetServer } from 'node:net'
import { ClientWebSocket } from './client-socket.ts'

/** ws's README heartbeat: a socket that did not answer the previous ping is dropped. */
export function pingAll(sockets: readonly ClientWebSocket[]): void {
  for (const ws of sockets) {
    if (!ws.alive) {
      ws.terminate()
      continue
    }
    ws.alive = false
    ws.ping()
  }
}

export function stopListening(server: Server | NetServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    if ('closeIdleConnections' in server) server.closeIdleConnections()
  })
}

/**
 * Stops a server whose connections were all handed to other processes (a primary's client
 * port): the listening socket closes now, and the sockets are the workers' to close. Waiting
 * for 'close' here would wait for every worker that ever took a socket to report them
 * closed, and for ever once one has exited (Node keeps `_usingWorkers` set after that
 * worker leaves `_workers`, so close() never calls back).
 */
export function stopHandingOff(server: NetServer): Promise<void> {
  if (server.listening) server.close()
  return Promise.resolve()
}

export async function waitForClose(sockets: ClientWebSocket[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (sockets.some((ws) => ws.readyState !== ClientWebSocket.CLOSED) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  for (const ws of sockets) {
    if (ws.readyState !== ClientWebSocket.CLOSED) ws.terminate()
  }
}
