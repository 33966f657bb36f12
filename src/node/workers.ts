/**
 * A node served by several processes (`processes`, Node only): one primary holds the
 * admin port, the relay, the backplane, the dedup memory and the node's history; workers
 * hold the client sockets, each a node of its own that gets every message the primary
 * delivers (a Mirror) and asks the primary for replays (it keeps no history). What a worker
 * knows — its sockets, subscriptions and deliveries — it reports here, and the primary's
 * `/status/`, `/stats.json` and `/metrics` add it up, per worker too.
 */
import type { NodeStats, RuntimeSummary } from '../metrics/stats.ts'
import type { StatusBody, Tidings } from '../tidings.ts'

/** One instance as a worker holds it. */
export interface WorkerInstance {
  active: number
  total: number
  messagesOut: number
  subscriptions: number
  subscribedIds: number
}

/** What one worker process reports of itself. */
export interface WorkerReport {
  /** 1-based, stable across a replacement of the process. */
  worker: number
  pid: number
  instances: Record<string, WorkerInstance>
  deliveries: number
  replays: number
  replayedMessages: number
  slowConsumerCloses: number
  badFrames: number
  limited: Record<string, number>
  connections: { held: number; handshaking: number; ceiling: number }
  outputBytes: number
  runtime: RuntimeSummary
  /** Filled in by the primary: times this worker's process was replaced. */
  restarts: number
  /** Filled in by the primary: bytes of history it sent this worker for replays. */
  replayBytes: number
}

/** A worker's report of its own node. */
export function workerReport(
  tidings: Tidings,
  worker: number,
  pid: number,
  connections: WorkerReport['connections'],
  runtime: RuntimeSummary
): WorkerReport {
  const instances: Record<string, WorkerInstance> = {}
  for (const instance of tidings.hub.instances()) {
    let subscriptions = 0
    for (const sockets of instance.index.values()) subscriptions += sockets.size
    instances[instance.name] = {
      active: instance.active,
      total: instance.total,
      messagesOut: instance.messagesOut,
      subscriptions,
      subscribedIds: instance.index.size,
    }
  }
  const { stats } = tidings.hub
  return {
    worker,
    pid,
    instances,
    deliveries: stats.deliveries,
    replays: stats.replays,
    replayedMessages: stats.replayedMessages,
    slowConsumerCloses: stats.slowConsumerCloses,
    badFrames: tidings.rejected.badFrames,
    limited: { ...tidings.limited },
    connections,
    outputBytes: tidings.hub.output.waiting,
    runtime,
    restarts: 0,
    replayBytes: 0,
  }
}

/**
 * Adds the workers' sockets and deliveries to the primary's `/status/` of `instance`
 * (Aphlict's keys keep their meaning for the node as a whole), with `workers`: each
 * worker's share.
 */
export function mergeWorkerStatus(status: StatusBody, reports: readonly WorkerReport[]): void {
  let active = 0
  let total = 0
  let out = 0
  const workers = reports.map((report) => {
    const held = report.instances[status.instance]
    active += held?.active ?? 0
    total += held?.total ?? 0
    out += held?.messagesOut ?? 0
    return {
      worker: report.worker,
      pid: report.pid,
      'clients.active': held?.active ?? 0,
      'messages.out': held?.messagesOut ?? 0,
    }
  })
  status['clients.active'] += active
  status['clients.total'] += total
  status['messages.out'] += out
  status.workers = workers
}

/** One worker as /stats.json lists it. */
export interface WorkerHealth {
  worker: number
  pid: number
  connections: number
  deliveries: number
  restarts: number
  replayBytes: number
  runtime: RuntimeSummary
}

/** The primary's /stats.json with the workers' sockets, deliveries and refusals added in. */
export function mergeWorkerStats(stats: NodeStats, reports: readonly WorkerReport[]): NodeStats {
  const instances = new Map(stats.instances.map((instance) => [instance.name, { ...instance }]))
  const totals = { ...stats.totals }
  const limited = { ...stats.limited }
  const budgets = { ...stats.budgets }
  const workers: WorkerHealth[] = []
  for (const report of reports) {
    let connections = 0
    for (const [name, held] of Object.entries(report.instances)) {
      let instance = instances.get(name)
      if (!instance) {
        instance = {
          name,
          connections: 0,
          subscriptions: 0,
          subscribedIds: 0,
          accepted: 0,
          messagesIn: 0,
          messagesOut: 0,
          historySize: 0,
          historyBytes: 0,
        }
        instances.set(name, instance)
      }
      instance.connections += held.active
      instance.subscriptions += held.subscriptions
      instance.subscribedIds = Math.max(instance.subscribedIds, held.subscribedIds)
      instance.accepted += held.total
      instance.messagesOut += held.messagesOut
      totals.connections += held.active
      totals.subscriptions += held.subscriptions
      totals.messagesOut += held.messagesOut
      connections += held.active
    }
    totals.deliveries += report.deliveries
    totals.replays += report.replays
    totals.replayedMessages += report.replayedMessages
    totals.slowConsumerCloses += report.slowConsumerCloses
    totals.badFrames += report.badFrames
    for (const [key, count] of Object.entries(report.limited)) {
      limited[key] = (limited[key] ?? 0) + count
    }
    budgets.connections += report.connections.held
    budgets.handshakes += report.connections.handshaking
    budgets.connectionCeiling += report.connections.ceiling
    budgets.outputBytes += report.outputBytes
    workers.push({
      worker: report.worker,
      pid: report.pid,
      connections,
      deliveries: report.deliveries,
      restarts: report.restarts,
      replayBytes: report.replayBytes,
      runtime: report.runtime,
    })
  }
  const list = [...instances.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  )
  return { ...stats, instances: list, totals, limited, budgets, workers }
}
