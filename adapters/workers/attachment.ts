/**
 * A hibernatable socket's attachment: its instance and subscriptions as one JSON string, so
 * the index can be rebuilt when the object wakes. Its size is known before it is stored.
 */

/**
 * The platform refuses attachments of 16 KiB and more (measured: 16,000 bytes accepted,
 * 16,384 refused); a socket whose subscriptions would not fit is closed with 1008.
 */
export const ATTACHMENT_BYTES = 16_000

/** Close code for a socket whose attachment cannot be read after a wake: reconnect. */
export const CLOSE_STATE_LOST = 1011

const ATTACHMENT_VERSION = 1

interface Attachment {
  v: number
  /** Instance name. */
  i: string
  /** Subscription ids. */
  s: string[]
}

/**
 * The attachment is one JSON string, so its serialised size is known: V8 stores a string as
 * one byte per character when every character is Latin-1, two otherwise, plus a short header.
 */
export function encodeAttachment(instance: string, subs: Iterable<string>): string {
  const attachment: Attachment = { v: ATTACHMENT_VERSION, i: instance, s: [...subs] }
  return JSON.stringify(attachment)
}

export function attachmentBytes(text: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the Latin-1 range starts at U+0000
  return (/^[\u0000-\u00ff]*$/.test(text) ? text.length : 2 * text.length) + 16
}

export function decodeAttachment(value: unknown): { instance: string; subs: string[] } | undefined {
  if (typeof value !== 'string') return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    return undefined
  }
  const { v, i, s } = (parsed ?? {}) as Partial<Attachment>
  if (v !== ATTACHMENT_VERSION || typeof i !== 'string' || !Array.isArray(s)) return undefined
  if (!s.every((id) => typeof id === 'string')) return undefined
  return { instance: i, subs: s }
}
