/**
 * One shard of the soak's client fleet, run as a child process of scripts/soak.ts and driven
 * over IPC. It keeps `connections` WebSocket clients on 127.0.0.1, each subscribed to a user
 * id and an object id, churns them (close + reconnect) and resubscribes some, and checks
 * every announced message against what its clients received: a client that was subscribed
 * (acknowledged by a pong) before the message was posted, and still was when the POST was
 * answered, must receive it exactly once. The process exits when its parent goes away.
 */
import WebSocket from 'ws'
import { Random } from './random.ts'
import {
  type Announcement,
  emptyFleetStats,
  type FleetCommand,
  type FleetStats,
} from './soak-protocol.ts'

const PONG = '{"type":"pong"}'
const PING = '{"command":"ping","data":null}'

interface Sub {
  client: Client
  id: string
  /** When the pong after the subscribe frame arrived (the server had it by then). */
  readyAt: number | undefined
  /** When the unsubscribe or close was sent. */
  leftAt: number | undefined
}

interface Client {
  n: number
  ws: WebSocket
  subs: Sub[]
  /** Subs sent since the last ping. */
  waiting: Sub[]
  /** Per ping in flight, oldest first: the subs its pong acknowledges. */
  acks: Sub[][]
  closing: boolean
}

const stats: FleetStats = emptyFleetStats()

let options: Extract<FleetCommand, { type: 'start' }> | undefined
let random = new Random(1)
let nextClient = 0
const clients = new Set<Client>()
/** id → subscriptions that may still matter for a message being checked. */
const index = new Map<string, Set<Sub>>()
/** seq → clients that received it. */
const received = new Map<number, Set<number>>()
const pending: Announcement[] = []
let stopping = false

function addSub(client: Client, id: string): Sub {
  const sub: Sub = { client, id, readyAt: undefined, leftAt: undefined }
  client.subs.push(sub)
  client.waiting.push(sub)
  let set = index.get(id)
  if (!set) {
    set = new Set()
    index.set(id, set)
  }
  set.add(sub)
  return sub
}

/** Pings; the pong will prove the server has every subscription sent before it. */
function ping(client: Client): void {
  client.acks.push(client.waiting.splice(0))
  client.ws.send(PING)
}

function userId(): string {
  return `PHID-USER-${random.int(options?.users ?? 1)}`
}
function objectId(): string {
  return `PHID-OBJ-${random.int(options?.objects ?? 1)}`
}

function open(): void {
  if (!options || stopping) return
  const n = nextClient++
  const ws = new WebSocket(`${options.url}/~soak/`, { perMessageDeflate: false })
  const client: Client = { n, ws, subs: [], waiting: [], acks: [], closing: false }
  ws.on('open', () => {
    clients.add(client)
    stats.open++
    stats.opened++
    const subs = [addSub(client, userId()), addSub(client, objectId())]
    ws.send(JSON.stringify({ command: 'subscribe', data: subs.map((sub) => sub.id) }))
    ping(client)
  })
  ws.on('message', (data) => {
    const text = data.toString()
    if (text === PONG) {
      const now = Date.now()
      for (const sub of client.acks.shift() ?? []) sub.readyAt = now
      return
    }
    const seq = (JSON.parse(text) as { seq?: number }).seq
    if (typeof seq !== 'number') return
    stats.received++
    let set = received.get(seq)
    if (!set) {
      set = new Set()
      received.set(seq, set)
    }
    if (set.has(n)) stats.duplicates++
    set.add(n)
  })
  ws.on('error', () => {
    if (!clients.has(client)) stats.connectErrors++
  })
  ws.on('close', (code) => {
    const now = Date.now()
    for (const sub of client.subs) sub.leftAt ??= now
    if (clients.delete(client)) stats.open--
    if (!client.closing && !stopping) {
      stats.unexpectedCloses++
      if (stats.missingSamples.length < 10)
        stats.missingSamples.push(`client ${n} closed by the server with ${code}`)
      open()
    }
  })
}

function pickClient(): Client | undefined {
  const size = clients.size
  if (size === 0) return undefined
  let skip = random.int(size)
  for (const client of clients) if (skip-- === 0) return client
  return undefined
}

/** Closes a random client and opens a new one in its place. */
function churn(): void {
  const client = pickClient()
  if (!client) return
  client.closing = true
  const now = Date.now()
  for (const sub of client.subs) sub.leftAt ??= now
  client.ws.close()
  stats.churned++
  open()
}

/** Moves a random client's object subscription to another object. */
function resubscribe(): void {
  const client = pickClient()
  if (!client) return
  const old = client.subs.find((sub) => sub.id.startsWith('PHID-OBJ-') && sub.leftAt === undefined)
  if (!old) return
  old.leftAt = Date.now()
  client.ws.send(JSON.stringify({ command: 'unsubscribe', data: [old.id] }))
  const fresh = addSub(client, objectId())
  client.ws.send(JSON.stringify({ command: 'subscribe', data: [fresh.id] }))
  ping(client)
  stats.resubscribed++
}

/** Checks messages whose delivery deadline has passed; forgets what can no longer matter. */
function evaluate(force: boolean): void {
  const now = Date.now()
  const deadline = options?.deadlineMs ?? 5000
  while (pending.length > 0) {
    const message = pending[0] as Announcement
    if (!force && message.pEnd + deadline > now) break
    pending.shift()
    const got = received.get(message.seq) ?? new Set<number>()
    const due = new Set<number>()
    for (const id of message.subscribers) {
      for (const sub of index.get(id) ?? []) {
        const ready = sub.readyAt !== undefined && sub.readyAt < message.pStart
        const stayed = sub.leftAt === undefined || sub.leftAt > message.pEnd
        if (ready && stayed) due.add(sub.client.n)
      }
    }
    for (const n of due) {
      stats.expected++
      if (!got.has(n)) {
        stats.missing++
        if (stats.missingSamples.length < 10)
          stats.missingSamples.push(`message ${message.seq} never reached client ${n}`)
      }
    }
    received.delete(message.seq)
    stats.evaluated++
  }
  // A subscription left before the oldest unchecked message was posted can no longer matter.
  const horizon = pending[0]?.pStart ?? now
  for (const [id, subs] of index) {
    for (const sub of subs) if (sub.leftAt !== undefined && sub.leftAt < horizon) subs.delete(sub)
    if (subs.size === 0) index.delete(id)
  }
}

let ticker: NodeJS.Timeout | undefined

function start(command: Extract<FleetCommand, { type: 'start' }>): void {
  options = command
  random = new Random(command.seed)
  let opening = 0
  // Ramp up in bursts so the handshakes do not all land at once.
  const ramp = setInterval(() => {
    for (let i = 0; i < 100 && opening < command.connections; i++, opening++) open()
    if (opening >= command.connections) clearInterval(ramp)
  }, 50)
  let carry = { churn: 0, resubscribe: 0 }
  ticker = setInterval(() => {
    if (command.churnPerSecond > 0 || command.resubscribePerSecond > 0) {
      if (opening >= command.connections && !stopping) {
        carry = {
          churn: carry.churn + command.churnPerSecond / 10,
          resubscribe: carry.resubscribe + command.resubscribePerSecond / 10,
        }
        for (; carry.churn >= 1; carry.churn--) churn()
        for (; carry.resubscribe >= 1; carry.resubscribe--) resubscribe()
      }
    }
    evaluate(false)
  }, 100)
}

async function stop(): Promise<void> {
  stopping = true
  evaluate(true)
  for (const client of clients) {
    client.closing = true
    client.ws.close()
  }
  const deadline = Date.now() + 5000
  while (clients.size > 0 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50))
  for (const client of clients) client.ws.terminate()
  if (ticker) clearInterval(ticker)
}

process.on('message', (raw) => {
  const command = raw as FleetCommand
  if (command.type === 'start') start(command)
  else if (command.type === 'announce') pending.push(...command.messages)
  else if (command.type === 'stats')
    process.send?.({ type: 'stats', id: command.id, stats: { ...stats, open: clients.size } })
  else if (command.type === 'stop') {
    stop().then(() => process.send?.({ type: 'stopped', stats: { ...stats, open: clients.size } }))
  }
})
process.on('disconnect', () => process.exit(0))
setTimeout(() => process.exit(3), Number(process.env.SOAK_MAX_MS ?? 3_600_000)).unref()
