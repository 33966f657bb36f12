/**
 * The core's metric families, named per Prometheus conventions: `tidings_` prefix, `_total`
 * on counters, base units (seconds, bytes). Built from one NodeStats snapshot.
 */

import type { WorkerHealth } from '../node/workers.ts'
import { backplaneFamilies } from './backplane-families.ts'
import type { MetricFamily, Sample } from './exposition.ts'
import { histogramSamples } from './histogram.ts'
import type { InstanceStats, NodeStats, PeerHealth } from './stats.ts'

function perInstance(
  name: string,
  type: 'counter' | 'gauge',
  help: string,
  stats: NodeStats,
  pick: (instance: InstanceStats) => number
): MetricFamily {
  return {
    name,
    type,
    help,
    samples: stats.instances.map((instance) => ({
      labels: { instance: instance.name },
      value: pick(instance),
    })),
  }
}

/** A family with one unlabelled sample. */
export function single(
  name: string,
  type: 'counter' | 'gauge',
  help: string,
  value: number
): MetricFamily {
  return { name, type, help, samples: [{ value }] }
}

function perPeer(
  name: string,
  type: 'counter' | 'gauge',
  help: string,
  peers: readonly PeerHealth[],
  pick: (peer: PeerHealth) => number
): MetricFamily {
  return {
    name,
    type,
    help,
    samples: peers.map((peer) => ({ labels: { peer: peer.peer }, value: pick(peer) })),
  }
}

/** The relay's peer states (src/relay/peer.ts), each with its own series. */
const RELAY_STATES: readonly string[] = ['unknown', 'up', 'retrying', 'down', 'probing', 'self']

function relayFamilies(peers: readonly PeerHealth[]): MetricFamily[] {
  const latency: Sample[] = []
  for (const peer of peers) {
    if (peer.latency) latency.push(...histogramSamples(peer.latency, { peer: peer.peer }))
  }
  return [
    perPeer(
      'tidings_relay_peer_up',
      'gauge',
      'Whether relayed messages currently reach the cluster peer (1) or not (0).',
      peers,
      (peer) => (peer.up ? 1 : 0)
    ),
    {
      name: 'tidings_relay_peer_state',
      type: 'gauge',
      help: "The relay's state for each cluster peer: 1 on the current state's series, 0 on the others.",
      samples: peers.flatMap((peer) => {
        const states = RELAY_STATES.includes(peer.state)
          ? RELAY_STATES
          : [...RELAY_STATES, peer.state]
        return states.map((state) => ({
          labels: { peer: peer.peer, state },
          value: state === peer.state ? 1 : 0,
        }))
      }),
    },
    perPeer(
      'tidings_relay_peer_consecutive_failures',
      'gauge',
      'Relay attempts to the peer that failed in a row.',
      peers,
      (peer) => peer.failures
    ),
    perPeer(
      'tidings_relay_queue_messages',
      'gauge',
      'Messages waiting to be relayed to the peer.',
      peers,
      (peer) => peer.queueDepth
    ),
    perPeer(
      'tidings_relay_sent_total',
      'counter',
      'Messages relayed to the peer and acknowledged.',
      peers,
      (peer) => peer.sent
    ),
    perPeer(
      'tidings_relay_failed_total',
      'counter',
      'Relay attempts to the peer that failed (error, timeout or bad answer).',
      peers,
      (peer) => peer.failed
    ),
    perPeer(
      'tidings_relay_dropped_total',
      'counter',
      'Messages for the peer dropped unsent (queue full or too old).',
      peers,
      (peer) => peer.dropped
    ),
    {
      name: 'tidings_relay_last_success_timestamp_seconds',
      type: 'gauge',
      help: 'When a relay to the peer last succeeded, as a Unix timestamp.',
      samples: peers
        .filter((peer) => peer.lastSuccess !== null)
        .map((peer) => ({
          labels: { peer: peer.peer },
          value: (peer.lastSuccess as number) / 1000,
        })),
    },
    {
      name: 'tidings_relay_latency_seconds',
      type: 'histogram',
      help: 'Time from sending a relayed message to the peer until its receipt.',
      samples: latency,
    },
  ]
}

/** Each worker process's share, for a node with `processes` > 1 (the totals include it). */
function workerFamilies(workers: NodeStats['workers']): MetricFamily[] {
  if (!workers) return []
  const per = (
    name: string,
    type: 'counter' | 'gauge',
    help: string,
    pick: (w: WorkerHealth) => number
  ) => ({
    name,
    type,
    help,
    samples: workers.map((w) => ({ labels: { worker: String(w.worker) }, value: pick(w) })),
  })
  return [
    per(
      'tidings_worker_connections',
      'gauge',
      'Client WebSockets held by the worker process.',
      (w) => w.connections
    ),
    per(
      'tidings_worker_deliveries_total',
      'counter',
      'Deliveries written by the worker process.',
      (w) => w.deliveries
    ),
    per(
      'tidings_worker_restarts_total',
      'counter',
      'Times the worker process died and was replaced (its clients reconnect).',
      (w) => w.restarts
    ),
    per(
      'tidings_worker_replay_bytes_total',
      'counter',
      "Bytes of history the primary sent the worker for its clients' replays.",
      (w) => w.replayBytes
    ),
  ]
}

/** `connectionsPerIp` → `connections_per_ip`, for label values. */
function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)
}

export function coreFamilies(stats: NodeStats): MetricFamily[] {
  const { totals } = stats
  return [
    {
      name: 'tidings_node_info',
      type: 'gauge',
      help: "This node's fingerprint (new on every start) and status version; always 1.",
      samples: [
        { labels: { fingerprint: stats.fingerprint, version: String(stats.version) }, value: 1 },
      ],
    },
    single(
      'tidings_start_time_seconds',
      'gauge',
      'When this node started, as a Unix timestamp.',
      stats.startedAt / 1000
    ),
    single(
      'tidings_ready',
      'gauge',
      'Whether the node accepts new client sockets (listening, not draining, not at its connection ceiling).',
      stats.ready ? 1 : 0
    ),
    single(
      'tidings_draining',
      'gauge',
      'Whether the node is draining: closing its sockets before it stops.',
      stats.draining ? 1 : 0
    ),
    perInstance(
      'tidings_connections',
      'gauge',
      'Open client WebSockets.',
      stats,
      (i) => i.connections
    ),
    perInstance(
      'tidings_connections_accepted_total',
      'counter',
      "Client WebSockets ever accepted (Aphlict's clients.total).",
      stats,
      (i) => i.accepted
    ),
    perInstance(
      'tidings_subscriptions',
      'gauge',
      'Subscriptions held by open sockets (one per socket and subscriber id).',
      stats,
      (i) => i.subscriptions
    ),
    perInstance(
      'tidings_subscribed_ids',
      'gauge',
      'Distinct subscriber ids with at least one subscribed socket.',
      stats,
      (i) => i.subscribedIds
    ),
    perInstance(
      'tidings_messages_in_total',
      'counter',
      "Valid messages received on the admin port (Aphlict's messages.in).",
      stats,
      (i) => i.messagesIn
    ),
    perInstance(
      'tidings_messages_out_total',
      'counter',
      "Messages delivered live to client sockets (Aphlict's messages.out).",
      stats,
      (i) => i.messagesOut
    ),
    perInstance(
      'tidings_history_messages',
      'gauge',
      'Messages kept for replay.',
      stats,
      (i) => i.historySize
    ),
    perInstance(
      'tidings_history_bytes',
      'gauge',
      'Serialised bytes of the messages kept for replay.',
      stats,
      (i) => i.historyBytes
    ),
    single(
      'tidings_deliveries_total',
      'counter',
      'Live deliveries to client sockets, all instances (one per socket per message).',
      totals.deliveries
    ),
    single('tidings_replays_total', 'counter', 'Replay requests served.', totals.replays),
    single(
      'tidings_replayed_messages_total',
      'counter',
      'Messages sent in answer to replay requests.',
      totals.replayedMessages
    ),
    single(
      'tidings_slow_consumer_closes_total',
      'counter',
      'Sockets closed with 4008 because too much data waited to be sent to them.',
      totals.slowConsumerCloses
    ),
    single(
      'tidings_rejected_frames_total',
      'counter',
      'Client frames ignored as malformed.',
      totals.badFrames
    ),
    single(
      'tidings_rejected_bodies_total',
      'counter',
      'Admin requests rejected with a 4xx (bad body, instance or secret).',
      totals.badBodies
    ),
    {
      name: 'tidings_messages_dropped_total',
      type: 'counter',
      help: 'Messages received but not delivered: "duplicate" (already accepted, by uniqueID or origin id) or "loop" (carried this node\'s fingerprint).',
      samples: [
        { labels: { reason: 'duplicate' }, value: totals.duplicates },
        { labels: { reason: 'loop' }, value: totals.loops },
      ],
    },
    {
      name: 'tidings_limit_refusals_total',
      type: 'counter',
      help: 'Clients refused or closed by a limit (connections per address or per second, origin, subscriptions, frames per second, frame or body size).',
      samples: Object.entries(stats.limited).map(([limit, count]) => ({
        labels: { limit: snakeCase(limit) },
        value: count,
      })),
    },
    ...budgetFamilies(stats.budgets),
    ...relayFamilies(stats.peers),
    ...backplaneFamilies(stats.backplane),
    ...workerFamilies(stats.workers),
  ]
}

function budgetFamilies(budgets: NodeStats['budgets']): MetricFamily[] {
  return [
    single(
      'tidings_client_connections_held',
      'gauge',
      'Client connections the process holds, upgraded or not (against limits.connections).',
      budgets.connections
    ),
    single(
      'tidings_client_connection_ceiling',
      'gauge',
      'The most client connections the process takes (limits.connections, or the descriptor limit less a reserve); 0 for none.',
      budgets.connectionCeiling
    ),
    single(
      'tidings_client_handshakes',
      'gauge',
      'Client connections still upgrading (each closed after limits.handshakeTimeout).',
      budgets.handshakes
    ),
    single('tidings_instances', 'gauge', 'Live instances (limits.instances).', budgets.instances),
    single(
      'tidings_history_total_bytes',
      'gauge',
      'Cost of the replay history of all instances together (limits.historyBytes).',
      budgets.historyBytes
    ),
    single(
      'tidings_output_waiting_bytes',
      'gauge',
      'Output waiting on backed-up sockets at the last check (limits.outputBytes).',
      budgets.outputBytes
    ),
  ]
}
