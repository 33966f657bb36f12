/** Walking the hub's open sockets on Node: heartbeat, shutdown and drain use these. */
import type { Server } from 'node:http'
import type { Connection } from '../../src/hub/connection.ts'
import type { Tidings } from '../../src/tidings.ts'
import { ClientWebSocket } from './client-socket.ts'

export function liveConnections(tidings: Tidings): Connection[] {
  const connections: Connection[] = []
  for (const instance of tidings.hub.instances()) connections.push(...instance.connections)
  return connections
}

export function liveSockets(tidings: Tidings): ClientWebSocket[] {
  const sockets: ClientWebSocket[] = []
  for (const instance of tidings.hub.instances()) {
    for (const connection of instance.connections)
      sockets.push(connection.socket as ClientWebSocket)
  }
  return sockets
}

/** ws's README heartbeat: a socket that did not answer the previous ping is dropped. */
export function pingAll(tidings: Tidings): void {
  for (const ws of liveSockets(tidings)) {
    if (!ws.alive) {
      ws.terminate()
      continue
    }
    ws.alive = false
    ws.ping()
  }
}

export function stopListening(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeIdleConnections()
  })
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
