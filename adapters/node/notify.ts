/** `tidings notify`: posts a test notification to an admin server and prints the receipt. */
import { SECRET_HEADER } from '../../src/relay/secret.ts'
import { UsageError } from './usage.ts'

export interface NotifyOptions {
  adminUrl: string
  subscribers: string[]
  message: string | undefined
  instance: string | undefined
  /** The config's `secret`, sent so a node that requires it accepts the post. */
  secret?: string | undefined
  print: (line: string) => void
}

export async function notify(options: NotifyOptions): Promise<number> {
  if (options.subscribers.length === 0) {
    throw new UsageError('Specify who to notify with "--subscriber ID".')
  }
  const body = {
    key: String(Date.now()),
    type: 'notification',
    subscribers: options.subscribers,
    ...(options.message === undefined ? {} : { message: options.message }),
    uniqueID: crypto.randomUUID().replaceAll('-', ''),
  }
  const query = options.instance ? `?instance=${encodeURIComponent(options.instance)}` : ''
  const url = `${options.adminUrl}/${query}`
  let response: Response
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(options.secret ? { [SECRET_HEADER]: options.secret } : {}),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(2000),
    })
  } catch (error) {
    options.print(`Unable to reach ${url}: ${(error as Error).cause ?? (error as Error).message}`)
    return 1
  }
  const text = await response.text()
  if (!response.ok) {
    options.print(`${url} answered ${response.status}: ${text}`)
    return 1
  }
  options.print(`Sent notification. Receipt: ${text}`)
  return 0
}
