import { describeContract } from '../contract/contract.ts'
import { nodeTarget } from '../helpers/node-target.ts'

describeContract('node adapter', nodeTarget)
