/**
 * What the contract suite needs from an adapter: a running node, reachable over real
 * sockets on loopback. Each adapter's test file provides a factory.
 */
import type { HistoryOptions, Limits } from '../../src/config/schema.ts'

export interface TargetOptions {
  limits?: Partial<Limits>
  history?: Partial<HistoryOptions>
  /** Browser origins allowed on the client port (`origins`). */
  origins?: string[]
}

export interface Target {
  /** Base WebSocket URL, e.g. `ws://127.0.0.1:1234` (paths are appended). */
  clientUrl: string
  /** Base admin URL, e.g. `http://127.0.0.1:1235`. */
  adminUrl: string
  /** Headers every admin request must carry (e.g. a shared secret on Workers). */
  adminHeaders: Record<string, string>
  close(): Promise<void>
}

export type TargetFactory = (options?: TargetOptions) => Promise<Target>

/** POSTs a message (object or raw text) to the admin port. */
export async function post(
  target: Target,
  body: unknown,
  query = '',
  init: RequestInit = {}
): Promise<{ status: number; json: unknown; text: string }> {
  const response = await fetch(`${target.adminUrl}/${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.adminHeaders },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
    ...init,
  })
  const text = await response.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.status, json, text }
}

export async function status(target: Target, instance?: string): Promise<Record<string, unknown>> {
  const query = instance === undefined ? '' : `?instance=${encodeURIComponent(instance)}`
  const response = await fetch(`${target.adminUrl}/status/${query}`, {
    headers: target.adminHeaders,
    signal: AbortSignal.timeout(5000),
  })
  return (await response.json()) as Record<string, unknown>
}
