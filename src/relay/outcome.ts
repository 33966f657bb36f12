/** Reading what a peer answered: Aphlict receipts, retryable statuses, error text. */

const RECEIPT_LIMIT = 4096

/** The fingerprint in an Aphlict receipt `{"fingerprint":"…"}`, if any. */
export function receiptFingerprint(body: string): string | undefined {
  if (body.length === 0 || body.length > RECEIPT_LIMIT) return undefined
  try {
    const value = JSON.parse(body) as { fingerprint?: unknown } | null
    const fingerprint = value?.fingerprint
    return typeof fingerprint === 'string' && fingerprint.length > 0 ? fingerprint : undefined
  } catch {
    return undefined
  }
}

/**
 * Statuses worth retrying: the peer (or a proxy before it) may accept the same request
 * later. Any other 4xx is about the message itself (e.g. 400, 413): retrying cannot help.
 */
export function retryable(status: number): boolean {
  return status === 401 || status === 403 || status === 408 || status === 429 || status >= 500
}

/** A short reason for a failed request, e.g. "connect ECONNREFUSED 127.0.0.1:22281". */
export function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = (error as Error & { cause?: unknown }).cause
  const code = (error as Error & { code?: unknown }).code
  if (cause instanceof Error && cause.message) return cause.message
  return error.message || (typeof code === 'string' ? code : 'error')
}
