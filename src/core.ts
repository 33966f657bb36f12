/**
 * `tidings/core`: the runtime-free core, for a runtime tidings has no adapter for. Build a node
 * with createNode() from a config (parseConfig) and your runtime's ports (src/ports.ts), then
 * translate your runtime's connections, frames and HTTP requests onto it, as the Node and
 * Workers adapters do.
 */
export type { SecretPolicy } from './admin/auth.ts'
export type { Lease, UpgradeRequest } from './client/admission.ts'
export * from './close-codes.ts'
export { DEFAULT_CONFIG } from './config/defaults.ts'
export { parseConfig, parseConfigText } from './config/parse.ts'
export type { Config } from './config/schema.ts'
export { ConfigError, type ErrorCode, RequestError } from './errors.ts'
export type { Connection } from './hub/connection.ts'
export type { NodeEventMap } from './node/events.ts'
export { createNode, type NodeOptions, type SavedInstance, TidingsNode } from './node/node.ts'
export type * from './ports.ts'
export type { StatusBody } from './tidings.ts'
