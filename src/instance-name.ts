/**
 * Instance names: Aphlict serves several Phorge installs from one process, keyed by
 * an "instance" taken from `/~name/` on the client port and `?instance=` on the admin port.
 */

export const DEFAULT_INSTANCE = 'default'
export const MAX_INSTANCE_LENGTH = 128

// Deliberately narrow: a name ends up in logs, map keys and relay URLs.
const INSTANCE_PATTERN = /^[A-Za-z0-9._:@-]+$/

/** True when `name` may be used as an instance name. */
export function isValidInstance(name: string): boolean {
  return name.length <= MAX_INSTANCE_LENGTH && INSTANCE_PATTERN.test(name)
}

/**
 * The instance named by a client URL path, exactly as Aphlict derives it: the text
 * between the first and second `~` with every `/` removed, or `default`.
 * The query string is not part of `pathname` and is ignored.
 */
export function instanceFromPath(pathname: string): string {
  const start = pathname.indexOf('~')
  if (start < 0) {
    return DEFAULT_INSTANCE
  }
  const end = pathname.indexOf('~', start + 1)
  const name = pathname.slice(start + 1, end < 0 ? undefined : end).replaceAll('/', '')
  return name === '' ? DEFAULT_INSTANCE : name
}

/** The instance named by an admin request's `?instance=` (first value wins), or `default`. */
export function instanceFromQuery(value: string | undefined): string {
  return value === undefined || value === '' ? DEFAULT_INSTANCE : value
}
