/** The shape of a tidings (Aphlict) message, shared by the publisher and the browser client. */

/** A message as published to an admin server and delivered to subscribed browsers. */
export interface TidingsMessage {
  /** Subscriber ids (Phorge PHIDs); a browser subscribed to any of them receives the message. */
  subscribers: readonly (string | number)[]
  /** Phorge uses `notification`, `message` (Conpherence) and `workboards`; any string is relayed. */
  type?: string
  /** Phorge's notification key. */
  key?: string | number
  /** Identifies the message across relays and replays; browsers drop repeats by it. */
  uniqueID?: string
  /** Fingerprints of the servers that have handled the message (stamped by the servers). */
  touched?: readonly string[]
  /** Any other JSON field is relayed unchanged, in order. */
  [field: string]: unknown
}
