/** The cluster's keys in `/status/`, after Aphlict's (Phorge ignores keys it does not know). */
import type { StatusBody, Tidings } from '../tidings.ts'
import type { Relay } from './relay.ts'

/**
 * Adds `fingerprint`, `cluster.duplicates` (messages dropped as already seen),
 * `cluster.dedupEvicted` (identities forgotten early because the dedup memory was full: raise
 * relay.dedupSize if it grows) and, with peers, `cluster` (one object per peer).
 */
export function clusterStatusExtras(
  tidings: Tidings,
  relay: Relay | undefined
): (status: StatusBody) => void {
  return (status) => {
    status.fingerprint = tidings.fingerprint
    status['cluster.duplicates'] = tidings.duplicates
    status['cluster.dedupEvicted'] = tidings.dedup.evicted
    if (relay && relay.peers.length > 0) status.cluster = relay.status()
  }
}
