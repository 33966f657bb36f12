/** Random identities: the per-process fingerprint (marks a message as seen by this node in `touched`) and message `uniqueID`s. */

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

/** The alphabet of Phorge's own `uniqueID`s (Filesystem::readRandomCharacters): a-z, 2-7. */
const UNIQUE_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'

/**
 * A fresh `uniqueID` for a message posted without one: 32 random characters of Phorge's
 * alphabet (160 bits), so no one can guess it ahead of time.
 */
export function generateUniqueId(): string {
  const bytes = new Uint8Array(32)
  crypto.getRandomValues(bytes)
  let out = ''
  // 32 symbols divide 256 evenly: the low five bits are uniform.
  for (const byte of bytes) out += UNIQUE_ID_ALPHABET[byte & 31]
  return out
}
