#!/usr/bin/env node
// Runs the TypeScript sources directly: Node 20 cannot strip types, so tsx loads them.
import { register } from 'tsx/esm/api'

register()
await import('../node-entry.ts')
