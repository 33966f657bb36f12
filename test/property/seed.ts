/**
 * One seed for every property test, so CI runs are reproducible. Explore other inputs with
 * `PROPERTY_SEED=<n> PROPERTY_RUNS=<n> npx vitest run test/property`.
 */
export const SEED = Number(process.env.PROPERTY_SEED ?? 0x7d1d)
export const PROPERTY_RUNS = Number(process.env.PROPERTY_RUNS ?? 300)
