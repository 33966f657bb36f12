/** The per-process fingerprint that marks a message as seen by this node in `touched`. */

/** Aphlict's alphabet: no 0, 1, i, l, o, I or O. */
export const FINGERPRINT_ALPHABET = '23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ'
export const FINGERPRINT_LENGTH = 16

/** 16 characters drawn uniformly from the alphabet with a CSPRNG (rejection sampling). */
export function generateFingerprint(): string {
  const size = FINGERPRINT_ALPHABET.length
  const limit = 256 - (256 % size)
  let out = ''
  const bytes = new Uint8Array(32)
  while (out.length < FINGERPRINT_LENGTH) {
    crypto.getRandomValues(bytes)
    for (const byte of bytes) {
      if (byte < limit && out.length < FINGERPRINT_LENGTH) {
        out += FINGERPRINT_ALPHABET[byte % size]
      }
    }
  }
  return out
}
