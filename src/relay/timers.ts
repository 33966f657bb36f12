/** The timers the relay uses: the global ones by default, a fake in unit tests. */

export type TimerHandle = unknown

export interface Timers {
  setTimeout(task: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

/**
 * Plain global timers, left referenced: a pending retry never outlives the relay (close()
 * clears them), and the shutdown flush must keep the process alive while it waits.
 */
export const globalTimers: Timers = {
  setTimeout: (task, ms) => setTimeout(task, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}
