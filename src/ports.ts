/**
 * The ports: the only ways the portable core reaches its runtime. Each adapter
 * (adapters/node, adapters/workers) implements these; the core never imports a
 * runtime module itself.
 */

/** Wall-clock time in milliseconds; injected so tests can control it. */
export interface Clock {
  now(): number
}

/** Aphlict has two levels: `log` (always) and `trace` (debug mode only). */
export interface Logger {
  log(message: string): void
  warn(message: string): void
  trace(message: string): void
  /** Lets hot paths skip building trace strings nobody will read. */
  readonly tracing: boolean
}

/** Runs a task soon, after pending I/O (setImmediate on Node). Used to split large fan-outs. */
export interface Scheduler {
  defer(task: () => void): void
}

/**
 * One serialised message, shared by every socket it goes to. `bytes` is the UTF-8 JSON
 * text, with FRAME_HEADROOM free bytes before it in its buffer (src/hub/outbound.ts);
 * `text` decodes it (on every read: cache it if you need it per socket). `cache` is a slot
 * an adapter may use to keep a per-message encoding of its own (Node: the WebSocket frame;
 * Workers: the text) so that work happens once per message, not once per socket.
 */
export interface Outbound {
  readonly bytes: Uint8Array
  readonly text: string
  cache: unknown
}

/** A client WebSocket as the hub sees it. */
export interface ClientSocket {
  /** Queue `message` as a text frame. Must not throw; a dead socket ignores it. */
  sendMessage(message: Outbound): void
  /** Close with a WebSocket close code and a short reason. Must not throw. */
  close(code: number, reason: string): void
  /**
   * Bytes waiting to go out: everything sent and not yet handed to the network, including
   * what an adapter batches for later in this turn. The output budget is checked against it.
   */
  readonly pending: number
}

/** What a peer answered to a relayed message. */
export interface PeerReply {
  status: number
  /** The response body as text (the Aphlict receipt is `{"fingerprint":"…"}`). */
  body: string
}

/** One cluster peer's admin endpoint, as the relay addresses it. */
export interface PeerAddress {
  /** `http://host:port` or `https://host:port`, no trailing slash. */
  readonly origin: string
  readonly secret?: string | undefined
}

/** Sends relayed messages to peers' admin servers (undici on Node, fetch on Workers). */
export interface PeerTransport {
  /**
   * POST `body` to `<peer>/?instance=<instance>`. Rejects on network failure or timeout;
   * resolves with whatever the peer answered otherwise.
   */
  post(
    peer: PeerAddress,
    instance: string,
    body: Uint8Array,
    signal: AbortSignal,
    /** How long the message waited in this node's queue, ms (see QUEUED_HEADER). */
    queuedMs?: number
  ): Promise<PeerReply>
  /**
   * Tells the peer this node has just started (`GET /status/` with HELLO_HEADER); resolves
   * either way. Runtimes without a start of their own (Workers) leave it out.
   */
  hello?(peer: PeerAddress, fingerprint: string, signal: AbortSignal): Promise<void>
  close?(): Promise<void>
}
