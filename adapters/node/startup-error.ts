/** Start-up failed for a reason the operator can fix; `message` says which (the CLI prints it, exit 1). */
export class StartupError extends Error {
  override readonly name = 'StartupError'
}

/** The reason an fs call failed (Node's message already starts with the errno code). */
export function fsReason(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
