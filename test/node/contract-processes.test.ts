/**
 * The contract suite against one node served by a primary and two worker processes: the
 * client sockets live in the workers, the admin port, dedup and history in the primary.
 */

import { describeContract } from '../contract/contract.ts'
import type { TargetOptions } from '../contract/target.ts'
import { startNode } from '../helpers/node-target.ts'

describeContract('node adapter, processes: 2', async (options: TargetOptions = {}) => {
  const server = await startNode({ ...options, extra: { processes: 2 } })
  return {
    clientUrl: server.url('client'),
    adminUrl: server.url('admin'),
    adminHeaders: {},
    close: () => server.close(1000),
  }
})
