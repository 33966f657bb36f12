import { describe, expect, it } from 'vitest'
import { generateFingerprint } from '../../src/fingerprint.ts'
import { instanceFromPath, instanceFromQuery, isValidInstance } from '../../src/instance-name.ts'

describe('instanceFromPath', () => {
  it.each([
    ['/', 'default'],
    ['/ws/', 'default'],
    ['/~/', 'default'],
    ['/~alpha/', 'alpha'],
    ['/~alpha', 'alpha'],
    ['/ws/~alpha/', 'alpha'],
    ['/~a/b/', 'ab'],
    ['/~a~b/', 'a'],
  ])('maps %s to %s as Aphlict does', (path, instance) => {
    expect(instanceFromPath(path)).toBe(instance)
  })
})

describe('instanceFromQuery', () => {
  it('defaults a missing or empty value', () => {
    expect(instanceFromQuery(undefined)).toBe('default')
    expect(instanceFromQuery('')).toBe('default')
    expect(instanceFromQuery('x')).toBe('x')
  })
})

describe('isValidInstance', () => {
  it('accepts ordinary names and refuses long or unsafe ones', () => {
    expect(isValidInstance('phorge.example-1')).toBe(true)
    expect(isValidInstance('a'.repeat(128))).toBe(true)
    expect(isValidInstance('a'.repeat(129))).toBe(false)
    expect(isValidInstance('bad name')).toBe(false)
    expect(isValidInstance('line\nbreak')).toBe(false)
    expect(isValidInstance('a/b?c')).toBe(false)
  })
})

describe('generateFingerprint', () => {
  it('draws 16 characters from the Aphlict alphabet, differently each time', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 200; i++) {
      const fingerprint = generateFingerprint()
      expect(fingerprint).toMatch(/^[2-9a-hjkmnp-zA-HJ-NP-Z]{16}$/)
      seen.add(fingerprint)
    }
    expect(seen.size).toBe(200)
  })
})
