/**
 * `tidings/workers`: the Worker and its Durable Object class, for your own Workers project.
 * Re-export both from your entry module and bind the class in your wrangler configuration:
 *
 * ```ts
 * // src/index.ts
 * export { default, TidingsObject } from 'tidings/workers'
 * ```
 *
 * ```toml
 * [[durable_objects.bindings]]
 * name = "TIDINGS"
 * class_name = "TidingsObject"
 *
 * [[migrations]]
 * tag = "v1"
 * new_sqlite_classes = ["TidingsObject"]
 * ```
 */
export type { TidingsVars } from './env.ts'
export type { WorkerEnv } from './object.ts'
export { default, TidingsObject } from './worker.ts'
