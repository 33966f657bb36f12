/** What a benchmark reads of a server from /proc (Linux): CPU time, RSS, its worker processes. */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100

/** User + system CPU µs a process has used so far (0 if it is gone). */
export function cpuMicros(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK
  } catch {
    return 0
  }
}

export function rssMb(pid: number | undefined): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return Number(match?.[1] ?? 0) / 1024
  } catch {
    return 0
  }
}

/**
 * `root` and its descendants that are node processes (a primary's workers), from the ppid
 * field of /proc/<pid>/stat. Not tsx's esbuild service.
 */
export function processTree(root: number | undefined): number[] {
  if (root === undefined) return []
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const list = children.get(ppid)
      if (list) list.push(Number(entry))
      else children.set(ppid, [Number(entry)])
    } catch {} // gone meanwhile
  }
  const tree: number[] = []
  const queue = [root]
  while (queue.length > 0) {
    const pid = queue.shift() as number
    tree.push(pid)
    queue.push(...(children.get(pid) ?? []))
  }
  return tree.filter((pid) => {
    try {
      return readlinkSync(`/proc/${pid}/exe`) === process.execPath
    } catch {
      return false
    }
  })
}

export const treeCpuMicros = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuMicros(pid), 0)
export const treeRssMb = (pids: number[]) => pids.reduce((sum, pid) => sum + rssMb(pid), 0)
