import parsePrometheus, { type ParsedFamily } from 'parse-prometheus-text-format'
import { describe, expect, it } from 'vitest'
import { handleFrame } from '../../src/client/frames.ts'
import { renderExposition } from '../../src/metrics/exposition.ts'
import { coreFamilies } from '../../src/metrics/families.ts'
import { Histogram, histogramQuantile, histogramSamples } from '../../src/metrics/histogram.ts'
import { PeerLatencies, relayHealth } from '../../src/metrics/relay-health.ts'
import type { PeerHealth } from '../../src/metrics/stats.ts'
import type { NodeOptions } from '../../src/node/node.ts'
import type { PeerState } from '../../src/relay/circuit.ts'
import type { Relay } from '../../src/relay/relay.ts'
import { FakeClock, FakeSocket, testNode } from '../helpers/fakes.ts'

function setup(runtime: NodeOptions['runtime'] = {}) {
  const clock = new FakeClock(1_700_000_000_000)
  const { node, tidings, app, scheduler } = testNode(
    {},
    { clock, fingerprint: 'fpfpfpfpfpfpfpfp', runtime }
  )
  const post = (body: string, instance = 'default') =>
    app.request(`/?instance=${instance}`, { method: 'POST', body })
  const scrape = async (): Promise<{ text: string; families: ParsedFamily[] }> => {
    const response = await app.request('/metrics')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
    const text = await response.text()
    return { text, families: parsePrometheus(text) }
  }
  return { clock, tidings, app, post, scrape, scheduler, node }
}

function family(families: ParsedFamily[], name: string): ParsedFamily {
  const found = families.find((f) => f.name === name)
  if (!found) throw new Error(`no metric family ${name}`)
  return found
}

/** The value of the series of `name` whose labels include `labels`. */
function value(
  families: ParsedFamily[],
  name: string,
  labels: Record<string, string> = {}
): number {
  const sample = family(families, name).metrics.find((metric) =>
    Object.entries(labels).every(([key, wanted]) => metric.labels?.[key] === wanted)
  )
  if (!sample?.value) throw new Error(`no sample ${name} ${JSON.stringify(labels)}`)
  return Number(sample.value)
}

const SAMPLE_LINE =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*",?)*\})? (NaN|[+-]Inf|-?[0-9.e+-]+)$/

describe('Prometheus exposition', () => {
  it('escapes label values and HELP text so a parser reads them back', () => {
    const text = renderExposition([
      {
        name: 'tidings_test_total',
        type: 'counter',
        help: 'back\\slash and\nnewline',
        samples: [{ labels: { peer: 'a "quoted"\\path\nline' }, value: 3 }],
      },
      {
        name: 'tidings_test_gauge',
        type: 'gauge',
        help: 'special values',
        samples: [
          { labels: { v: 'nan' }, value: Number.NaN },
          { labels: { v: 'inf' }, value: Number.POSITIVE_INFINITY },
          { labels: { v: 'neg' }, value: Number.NEGATIVE_INFINITY },
        ],
      },
    ])
    expect(text).toContain('tidings_test_total{peer="a \\"quoted\\"\\\\path\\nline"} 3\n')
    expect(text).toContain('# HELP tidings_test_total back\\\\slash and\\nnewline\n')
    for (const line of text.trimEnd().split('\n')) {
      if (!line.startsWith('#')) expect(line).toMatch(SAMPLE_LINE)
    }
    const [counter, gauge] = parsePrometheus(text)
    expect(counter).toMatchObject({
      name: 'tidings_test_total',
      type: 'COUNTER',
      help: 'back\\slash and\nnewline',
      metrics: [{ value: '3', labels: { peer: 'a "quoted"\\path\nline' } }],
    })
    expect(gauge?.metrics.map((m) => m.value)).toEqual(['NaN', '+Inf', '-Inf'])
  })

  it('refuses invalid metric and label names and a family rendered twice', () => {
    const ok = { name: 'tidings_x', type: 'gauge' as const, help: 'x', samples: [{ value: 1 }] }
    expect(() => renderExposition([{ ...ok, name: '1bad' }])).toThrow(/invalid metric name/)
    expect(() =>
      renderExposition([{ ...ok, samples: [{ labels: { 'a-b': 'x' }, value: 1 }] }])
    ).toThrow(/invalid Prometheus label name/)
    expect(() => renderExposition([ok, ok])).toThrow(/rendered twice/)
  })

  it('renders histograms with cumulative buckets, +Inf equal to the count, sum and count', () => {
    const histogram = new Histogram([0.01, 0.1, 1])
    for (const seconds of [0.005, 0.05, 0.05, 0.5, 5]) histogram.observe(seconds)
    const snapshot = histogram.snapshot()
    const text = renderExposition([
      {
        name: 'tidings_h_seconds',
        type: 'histogram',
        help: 'h',
        samples: histogramSamples(snapshot),
      },
    ])
    const [parsed] = parsePrometheus(text)
    expect(parsed?.type).toBe('HISTOGRAM')
    expect(parsed?.metrics[0]).toMatchObject({
      buckets: { '0.01': '1', '0.1': '3', '1': '4', '+Inf': '5' },
      count: '5',
      sum: '5.605',
    })
    expect(histogramQuantile(snapshot, 0.5)).toBeCloseTo(0.0775, 4)
    expect(histogramQuantile(new Histogram().snapshot(), 0.5)).toBeNull()
  })
})

describe('GET /metrics', () => {
  it('names every family tidings_*, with HELP and TYPE, and _total only on counters', async () => {
    const { scrape } = setup()
    const { text, families } = await scrape()
    expect(families.length).toBeGreaterThan(15)
    for (const f of families) {
      expect(f.name).toMatch(/^tidings_/)
      expect(f.help.length).toBeGreaterThan(0)
      expect(f.name.endsWith('_total')).toBe(f.type === 'COUNTER')
      expect(text).toContain(`# TYPE ${f.name} `)
    }
  })

  it('moves connections, subscriptions, messages, deliveries and rejects as traffic flows', async () => {
    const { tidings, post, scrape, scheduler } = setup()
    const sockets = [new FakeSocket(), new FakeSocket(), new FakeSocket()]
    const connections = sockets.map((socket) => tidings.hub.connect(socket, 'default'))
    tidings.hub.subscribe(connections[0]!, ['P1', 'P2'])
    tidings.hub.subscribe(connections[1]!, ['P1'])
    tidings.hub.connect(new FakeSocket(), 'other')

    let { families } = await scrape()
    expect(value(families, 'tidings_connections', { instance: 'default' })).toBe(3)
    expect(value(families, 'tidings_connections', { instance: 'other' })).toBe(1)
    expect(value(families, 'tidings_subscriptions', { instance: 'default' })).toBe(3)
    expect(value(families, 'tidings_subscribed_ids', { instance: 'default' })).toBe(2)
    expect(value(families, 'tidings_deliveries_total')).toBe(0)

    expect((await post('{"key":"1","subscribers":["P1"]}')).status).toBe(200)
    expect((await post('{"key":"2","subscribers":["P2"]}')).status).toBe(200)
    expect((await post('not json')).status).toBe(400)
    handleFrame(tidings.frameContext, connections[2]!, '{"command":"nope"}')
    handleFrame(tidings.frameContext, connections[0]!, '{"command":"replay","data":{"age":1000}}')
    scheduler.runAll()
    tidings.hub.disconnect(connections[2]!)

    ;({ families } = await scrape())
    expect(value(families, 'tidings_connections', { instance: 'default' })).toBe(2)
    expect(value(families, 'tidings_connections_accepted_total', { instance: 'default' })).toBe(3)
    expect(value(families, 'tidings_messages_in_total', { instance: 'default' })).toBe(2)
    expect(value(families, 'tidings_messages_out_total', { instance: 'default' })).toBe(3)
    expect(value(families, 'tidings_deliveries_total')).toBe(3)
    expect(value(families, 'tidings_history_messages', { instance: 'default' })).toBe(2)
    expect(value(families, 'tidings_history_bytes', { instance: 'default' })).toBeGreaterThan(40)
    expect(value(families, 'tidings_rejected_bodies_total')).toBe(1)
    expect(value(families, 'tidings_rejected_frames_total')).toBe(1)
    expect(value(families, 'tidings_replays_total')).toBe(1)
    expect(value(families, 'tidings_replayed_messages_total')).toBe(2)
    expect(value(families, 'tidings_slow_consumer_closes_total')).toBe(0)
    expect(value(families, 'tidings_node_info', { fingerprint: 'fpfpfpfpfpfpfpfp' })).toBe(1)
    expect(value(families, 'tidings_start_time_seconds')).toBe(1_700_000_000)
  })

  it('counts messages dropped as duplicates or loops, and refusals per limit', async () => {
    const { tidings, post, scrape } = setup()
    await post('{"uniqueID":"u1","subscribers":["P"]}')
    await post('{"uniqueID":"u1","subscribers":["P"]}')
    await post('{"subscribers":["P"],"touched":["fpfpfpfpfpfpfpfp"]}')
    tidings.limited.connectionsPerIp += 3
    const { families } = await scrape()
    expect(value(families, 'tidings_messages_in_total', { instance: 'default' })).toBe(3)
    expect(value(families, 'tidings_messages_dropped_total', { reason: 'duplicate' })).toBe(1)
    expect(value(families, 'tidings_messages_dropped_total', { reason: 'loop' })).toBe(1)
    expect(value(families, 'tidings_limit_refusals_total', { limit: 'connections_per_ip' })).toBe(3)
    expect(value(families, 'tidings_limit_refusals_total', { limit: 'body_bytes' })).toBe(0)
  })

  it('counts slow-consumer closes', async () => {
    const { tidings, post, scrape } = setup()
    const slow = new FakeSocket()
    slow.pending = 64 * 1024 * 1024
    tidings.hub.subscribe(tidings.hub.connect(slow, 'default'), ['P'])
    await post('{"subscribers":["P"]}')
    expect(slow.closed?.code).toBe(4008)
    const { families } = await scrape()
    expect(value(families, 'tidings_slow_consumer_closes_total')).toBe(1)
    expect(value(families, 'tidings_connections', { instance: 'default' })).toBe(0)
  })

  it('shows each peer: up, state series, queue, sent/failed/dropped and a latency histogram', async () => {
    const latency = new Histogram()
    latency.observe(0.002)
    latency.observe(0.03)
    const peers: PeerHealth[] = [
      {
        peer: 'http://127.0.0.2:22281',
        state: 'up',
        up: true,
        failures: 0,
        queueDepth: 2,
        sent: 10,
        failed: 1,
        dropped: 0,
        lastSuccess: 1_700_000_001_000,
        latency: latency.snapshot(),
      },
      {
        peer: 'https://[fd00::3]:22281',
        state: 'down',
        up: false,
        failures: 4,
        queueDepth: 1024,
        sent: 0,
        failed: 4,
        dropped: 7,
        lastSuccess: null,
      },
    ]
    const { node } = setup()
    const text = renderExposition(coreFamilies({ ...node.stats(), peers }))
    const families = parsePrometheus(text)
    const a = { peer: 'http://127.0.0.2:22281' }
    const b = { peer: 'https://[fd00::3]:22281' }
    expect(value(families, 'tidings_relay_peer_up', a)).toBe(1)
    expect(value(families, 'tidings_relay_peer_up', b)).toBe(0)
    expect(value(families, 'tidings_relay_peer_state', { ...b, state: 'down' })).toBe(1)
    expect(value(families, 'tidings_relay_peer_state', { ...b, state: 'up' })).toBe(0)
    expect(value(families, 'tidings_relay_queue_messages', b)).toBe(1024)
    expect(value(families, 'tidings_relay_peer_consecutive_failures', b)).toBe(4)
    expect(value(families, 'tidings_relay_sent_total', a)).toBe(10)
    expect(value(families, 'tidings_relay_failed_total', a)).toBe(1)
    expect(value(families, 'tidings_relay_dropped_total', b)).toBe(7)
    expect(value(families, 'tidings_relay_last_success_timestamp_seconds', a)).toBe(1_700_000_001)
    expect(family(families, 'tidings_relay_latency_seconds').type).toBe('HISTOGRAM')
    // The parser folds labelled histogram series together, so read these lines directly.
    expect(text).toContain(
      'tidings_relay_latency_seconds_bucket{peer="http://127.0.0.2:22281",le="0.0025"} 1\n'
    )
    expect(text).toContain(
      'tidings_relay_latency_seconds_bucket{peer="http://127.0.0.2:22281",le="+Inf"} 2\n'
    )
    expect(text).toContain('tidings_relay_latency_seconds_count{peer="http://127.0.0.2:22281"} 2\n')
    expect(text).not.toContain(
      'tidings_relay_latency_seconds_count{peer="https://[fd00::3]:22281"}'
    )
  })

  it('appends the runtime families the adapter supplies', async () => {
    const { scrape } = setup({
      families: () => [
        {
          name: 'tidings_process_resident_memory_bytes',
          type: 'gauge',
          help: 'RSS',
          samples: [{ value: 1234 }],
        },
      ],
    })
    const { families } = await scrape()
    expect(value(families, 'tidings_process_resident_memory_bytes')).toBe(1234)
  })
})

describe('health and readiness', () => {
  it('answers /healthz 200 whatever the readiness', async () => {
    const { app, node } = setup()
    node.state.listening = false
    node.state.draining = true
    const response = await app.request('/healthz')
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: 'alive' })
  })

  it('answers /readyz 200 when listening, 503 before and while draining', async () => {
    const { app, scrape, node } = setup()
    node.state.listening = false
    let response = await app.request('/readyz')
    expect(response.status).toBe(503)
    expect(await response.json()).toEqual({ status: 'not_listening' })
    node.state.listening = true
    response = await app.request('/readyz')
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: 'ready' })
    expect(value((await scrape()).families, 'tidings_ready')).toBe(1)
    node.state.draining = true
    response = await app.request('/readyz')
    expect(response.status).toBe(503)
    expect(await response.json()).toEqual({ status: 'draining' })
    const { families } = await scrape()
    expect(value(families, 'tidings_ready')).toBe(0)
    expect(value(families, 'tidings_draining')).toBe(1)
  })

  it('answers HEAD probes like GET, without a body', async () => {
    const { app } = setup()
    const response = await app.request('/readyz', { method: 'HEAD' })
    expect(response.status).toBe(200)
    expect(await response.text()).toBe('')
  })
})

describe('GET /stats.json and /dashboard/', () => {
  it('reports totals, instances and peers in one JSON object', async () => {
    const { tidings, app, post } = setup({ summary: () => ({ residentMemoryBytes: 99 }) })
    tidings.hub.subscribe(tidings.hub.connect(new FakeSocket(), 'a'), ['P'])
    await post('{"subscribers":["P"]}', 'a')
    const stats = await (await app.request('/stats.json')).json()
    expect(stats).toMatchObject({
      fingerprint: 'fpfpfpfpfpfpfpfp',
      ready: true,
      draining: false,
      totals: { connections: 1, subscriptions: 1, messagesIn: 1, deliveries: 1 },
      instances: [{ name: 'a', connections: 1, messagesIn: 1, messagesOut: 1, historySize: 1 }],
      peers: [],
      runtime: { residentMemoryBytes: 99 },
    })
  })

  it('serves one self-contained page: inline script and style, no external resource', async () => {
    const { app } = setup()
    const redirect = await app.request('/dashboard')
    expect(redirect.status).toBe(301)
    expect(redirect.headers.get('location')).toBe('dashboard/')
    const response = await app.request('/dashboard/')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'")
    expect(response.headers.get('content-security-policy')).toContain("connect-src 'self'")
    const html = await response.text()
    expect(html).toMatch(/^<!doctype html>/)
    expect(html).toContain('<script>')
    expect(html).toContain("fetch('../stats.json'")
    expect(html).not.toMatch(
      /<script[^>]+src=|<link[^>]+href="(?!data:)|https?:\/\/(?!www\.w3\.org\/2000\/svg)/
    )
    expect(html).not.toContain('innerHTML')
  })
})

describe('relay health', () => {
  it("maps the relay's peer status and keeps a latency histogram per peer", () => {
    const latencies = new PeerLatencies()
    latencies.observe('http://a:1', 3)
    latencies.observe('http://a:1', 40)
    const status = (peer: string, state: PeerState) => ({
      peer,
      state,
      fingerprint: null,
      lastSuccess: null,
      lastError: null,
      failures: state === 'down' ? 3 : 0,
      failed: state === 'down' ? 5 : 0,
      queue: 7,
      inFlight: 0,
      relayed: 11,
      skipped: 0,
      dropped: 2,
      rejected: 0,
    })
    const relay = {
      peers: [
        { status: () => status('http://a:1', 'up') },
        { status: () => status('http://b:1', 'down') },
        { status: () => status('http://c:1', 'retrying') },
      ],
    } as unknown as Pick<Relay, 'peers'>
    const [a, b, c] = relayHealth(relay, latencies)
    expect(a).toMatchObject({ peer: 'http://a:1', up: true, sent: 11, queueDepth: 7, dropped: 2 })
    expect(a?.latency?.count).toBe(2)
    expect(a?.latency?.sum).toBeCloseTo(0.043)
    expect(b).toMatchObject({ up: false, state: 'down', failures: 3, failed: 5 })
    expect(b?.latency?.count).toBe(0)
    expect(c?.up).toBe(false)
    expect(relayHealth(undefined, latencies)).toEqual([])
  })
})
