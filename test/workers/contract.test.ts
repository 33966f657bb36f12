import { describeContract } from '../contract/contract.ts'
import { workerTarget } from '../helpers/worker-target.ts'

describeContract('workers adapter', workerTarget)
