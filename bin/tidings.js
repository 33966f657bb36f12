#!/usr/bin/env node
// The `tidings` command. In the published package it runs the compiled JavaScript in dist/.
// In a checkout (node-entry.ts beside this folder) it runs the TypeScript sources through
// tsx instead, so a stale build is never what runs.
import { existsSync } from 'node:fs'

const source = new URL('../node-entry.ts', import.meta.url)
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api')
  register()
  await import(source.href)
} else {
  await import('../dist/node-entry.js')
}
