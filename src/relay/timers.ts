/** The timers the relay uses: the global ones by default, a fake in unit tests. */

export type TimerHandle = unknown

export interface Timers {
  setTimeout(task: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

export const globalTimers: Timers = {
  setTimeout: (task, ms) => {
    const handle = setTimeout(task, ms) as unknown as { unref?: () => void }
    // On Node a pending retry or timeout must not keep a stopping process alive.
    handle.unref?.()
    return handle
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}
