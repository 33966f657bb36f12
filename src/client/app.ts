/**
 * The client port for plain HTTP requests. Any path upgrades to a WebSocket; anything that
 * is not an upgrade gets Aphlict's 501, which Phorge's "test client" probe expects.
 */
import { Hono } from 'hono'
import { RequestError } from '../errors.ts'
import { instanceFromPath, isValidInstance } from '../instance.ts'

export const NOT_A_WEBSOCKET_BODY = 'HTTP/501 Use Websockets\n'

export function createClientApp(): Hono {
  const app = new Hono()
  app.all('*', (c) => c.text(NOT_A_WEBSOCKET_BODY, 501))
  return app
}

/** The instance a WebSocket upgrade to `url` joins, or a RequestError when its name is unusable. */
export function upgradeInstance(url: string): string | RequestError {
  const instance = instanceFromPath(new URL(url, 'http://x').pathname)
  if (!isValidInstance(instance)) {
    return new RequestError(
      'instance_invalid',
      400,
      'The ~instance in the path is not a valid instance name.'
    )
  }
  return instance
}
