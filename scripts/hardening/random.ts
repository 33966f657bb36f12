/** A small seeded PRNG and the mutations the fuzzer applies, so every run is reproducible. */

export class Random {
  #state: number
  constructor(seed: number) {
    this.#state = seed >>> 0 || 0x9e3779b9
  }
  /** mulberry32: a float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let t = this.#state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }
  chance(p: number): boolean {
    return this.next() < p
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) out[i] = this.int(256)
    return out
  }
  /** Any string of code points, lone surrogates included. */
  text(n: number): string {
    let out = ''
    for (let i = 0; i < n; i++) {
      const kind = this.int(4)
      out += String.fromCharCode(
        kind === 0 ? this.int(128) : kind === 1 ? this.int(0x800) : this.int(0x10000)
      )
    }
    return out
  }
}

/** Flips, inserts, deletes, duplicates or truncates a few bytes of `input`. */
export function mutate(random: Random, input: Buffer): Buffer {
  let bytes = Buffer.from(input)
  const edits = 1 + random.int(4)
  for (let e = 0; e < edits; e++) {
    const at = random.int(bytes.length + 1)
    switch (random.int(6)) {
      case 0:
        if (at < bytes.length) bytes[at] = random.int(256)
        break
      case 1:
        bytes = Buffer.concat([
          bytes.subarray(0, at),
          random.bytes(1 + random.int(4)),
          bytes.subarray(at),
        ])
        break
      case 2:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + random.int(4))])
        break
      case 3: {
        const end = Math.min(bytes.length, at + 1 + random.int(16))
        bytes = Buffer.concat([
          bytes.subarray(0, end),
          bytes.subarray(at, end),
          bytes.subarray(end),
        ])
        break
      }
      case 4:
        bytes = bytes.subarray(0, at)
        break
      default: {
        const token = Buffer.from(
          random.pick([
            'null',
            '[]',
            '{}',
            '"',
            ',',
            ':',
            '__proto__',
            '1e999',
            '-0',
            '\\u0000',
            'true',
          ])
        )
        bytes = Buffer.concat([bytes.subarray(0, at), token, bytes.subarray(at)])
      }
    }
  }
  return bytes
}
