/**
 * The optional shared secret on admin POSTs and relays: the header that carries it and a
 * constant-time check. Web Crypto only, so the same code runs on Node and Workers.
 */

/** Request header carrying the cluster secret (sent on every relay when one is configured). */
export const SECRET_HEADER = 'x-tidings-secret'

const encoder = new TextEncoder()

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)))
}

/**
 * True when `given` equals `expected`. Both are hashed first, so the comparison takes the same
 * time whatever the inputs' lengths and wherever they differ.
 */
export async function secretMatches(given: string | null, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(given ?? ''), digest(expected)])
  let difference = given === null ? 1 : 0
  for (let i = 0; i < a.length; i++) difference |= (a[i] as number) ^ (b[i] as number)
  return difference === 0
}
