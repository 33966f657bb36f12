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
 * Random bytes for ids, drawn from the CSPRNG 4 KiB at a time: one getRandomValues call per
 * 128 ids instead of one per id (a call costs microseconds on Node).
 */
const pool = new Uint8Array(4096)
let poolAt = pool.length

/**
 * A fresh `uniqueID` for a message posted without one: 32 random characters of Phorge's
 * alphabet (160 bits), so no one can guess it ahead of time.
 */
export function generateUniqueId(): string {
  if (poolAt + 32 > pool.length) {
    crypto.getRandomValues(pool)
    poolAt = 0
  }
  let out = ''
  // 32 symbols divide 256 evenly: the low five bits are uniform.
  for (let i = poolAt; i < poolAt + 32; i++) out += UNIQUE_ID_ALPHABET[(pool[i] as number) & 31]
  poolAt += 32
  return out
}
