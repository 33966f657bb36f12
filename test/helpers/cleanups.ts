/** Things to undo after each test of a file, newest first (servers, clients, processes). */
import { afterEach } from 'vitest'

export function cleanups(): (undo: () => unknown) => void {
  const list: (() => unknown)[] = []
  afterEach(async () => {
    for (const undo of list.splice(0).reverse()) await undo()
  })
  return (undo) => {
    list.push(undo)
  }
}
