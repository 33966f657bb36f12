/** The backplane's metric families (absent when no backplane is configured). */
import type { BackplaneHealth } from '../backplane/status.ts'
import type { MetricFamily } from './exposition.ts'
import { single } from './families.ts'
import { histogramSamples } from './histogram.ts'

export function backplaneFamilies(backplane: BackplaneHealth | undefined): MetricFamily[] {
  if (!backplane) return []
  const b = backplane
  return [
    single(
      'tidings_backplane_up',
      'gauge',
      'Whether the broker backplane is reachable (1) or not (0).',
      b.up ? 1 : 0
    ),
    single(
      'tidings_backplane_buffered_messages',
      'gauge',
      'Messages accepted here and not yet published to the broker.',
      b.buffered
    ),
    single(
      'tidings_backplane_buffered_bytes',
      'gauge',
      'Bytes of the messages not yet published to the broker.',
      b.bufferedBytes
    ),
    single(
      'tidings_backplane_published_total',
      'counter',
      'Messages published to the broker and acknowledged.',
      b.published
    ),
    single(
      'tidings_backplane_received_total',
      'counter',
      'Messages from other nodes received from the broker.',
      b.received
    ),
    single(
      'tidings_backplane_dropped_total',
      'counter',
      'Messages never published: pushed out of a full buffer, or older than history.age.',
      b.dropped
    ),
    single(
      'tidings_backplane_rejected_total',
      'counter',
      'Broker payloads that were not a valid message.',
      b.rejected
    ),
    single(
      'tidings_backplane_reconnects_total',
      'counter',
      'Times the broker connection came back after it was lost.',
      b.reconnects
    ),
    single(
      'tidings_backplane_publish_failures_total',
      'counter',
      'Publishes that failed and were retried.',
      b.failures
    ),
    single(
      'tidings_backplane_shared_replays_total',
      'counter',
      "Replays served from the broker's history.",
      b.sharedReplays
    ),
    single(
      'tidings_backplane_channels',
      'gauge',
      'Broker channels this node subscribes to.',
      b.channels
    ),
    {
      name: 'tidings_backplane_shard_published_total',
      type: 'counter',
      help: 'Publishes per broker shard (the node that took them).',
      samples: Object.entries(b.shards).map(([shard, value]) => ({ labels: { shard }, value })),
    },
    {
      name: 'tidings_backplane_publish_seconds',
      type: 'histogram',
      help: "Time from accepting a message to the broker's acknowledgement of its publish.",
      samples: histogramSamples(b.latency),
    },
  ]
}
