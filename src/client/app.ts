/**
 * The client port for plain HTTP requests. Any path upgrades to a WebSocket; anything that
 * is not an upgrade gets Aphlict's 501, which Phorge's "test client" probe expects.
 */
import { Hono } from 'hono'

export const NOT_A_WEBSOCKET_BODY = 'HTTP/501 Use Websockets\n'

export function createClientApp(): Hono {
  const app = new Hono()
  app.all('*', (c) => c.text(NOT_A_WEBSOCKET_BODY, 501))
  return app
}
