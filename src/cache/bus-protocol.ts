import { RedscaleError } from '../common/errors.js';
import { isVersionMap } from './envelope.js';

/**
 * The bus format version this release writes. A message states its version in `v`; one without
 * `v` is from redscale 0.1 (the same fields, read the same way), so instances of both can share
 * a channel during a rolling upgrade. A message with a newer version is dropped (and reported
 * once per version): its fields may mean something this release does not know.
 */
export const BUS_FORMAT = 1;

/** The longest message accepted, in characters; longer ones are dropped. Senders split below it. */
export const MAX_MESSAGE_LENGTH = 1_000_000;

/** The longest key, tag or pattern the cache accepts, so any one of them fits in a message. */
export const MAX_KEY_LENGTH = 16_384;

/** The longest pattern accepted (here and on the bus): L1 matching is O(pattern × key) per entry. */
export const MAX_PATTERN_LENGTH = 1_024;

/** What instances tell each other. Never values: keys, tags, patterns and heartbeats only. */
export interface BusMessage {
  /** Sender's instance id. */
  i: string;
  /** Keys written or deleted: drop them from L1, and wake anyone waiting for them. */
  k?: string[];
  /** Tags invalidated, with their new versions. */
  t?: Record<string, number>;
  /** A glob (inside the cache's prefix) whose keys were deleted. */
  p?: string;
  /** Keys whose load failed: waiters stop waiting and load themselves. */
  f?: string[];
  /** A heartbeat's sequence number: its sender checks that it hears its own. */
  h?: number;
}

/** Why a message was dropped. */
export type DropReason = 'malformed' | 'too-large' | 'newer-format';

/** A message that was dropped: what the bus reports. */
export class BusMessageError extends RedscaleError {
  /** Why it was dropped. */
  readonly reason: DropReason;

  constructor(reason: DropReason, detail: string, context: Record<string, unknown> = {}) {
    super('ERR_BUS_MESSAGE', `redscale: dropped a cache bus message (${reason}): ${detail}`, {
      context: { reason, ...context },
    });
    this.reason = reason;
  }
}

/** A decoded message, or why it was dropped (with the format version it claimed, if newer). */
export type Decoded = { ok: true; message: BusMessage } | { ok: false; error: BusMessageError; version?: number };

/**
 * Decodes and validates one message. Anything on the channel may come from another app, an
 * operator's redis-cli, or another redscale version: nothing is trusted, nothing throws.
 */
export function decodeMessage(text: string): Decoded {
  if (text.length > MAX_MESSAGE_LENGTH) {
    return drop('too-large', `${text.length} characters, more than ${MAX_MESSAGE_LENGTH}`, { length: text.length });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return drop('malformed', 'not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return drop('malformed', 'not a JSON object');
  const fields = raw as Record<string, unknown>;
  const version = fields.v;
  if (version !== undefined) {
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
      return drop('malformed', '"v" is not a format version');
    }
    if (version > BUS_FORMAT) {
      const error = new BusMessageError('newer-format', `format ${version}, this release reads up to ${BUS_FORMAT}`, {
        version,
      });
      return { ok: false, error, version };
    }
  }
  const { i, k, t, p, f, h } = fields;
  if (typeof i !== 'string' || i === '' || i.length > 200) return drop('malformed', '"i" is not an instance id');
  if (k !== undefined && !isKeyList(k)) return drop('malformed', '"k" is not a list of keys');
  if (f !== undefined && !isKeyList(f)) return drop('malformed', '"f" is not a list of keys');
  if (t !== undefined && !isVersionMap(t)) return drop('malformed', '"t" is not a map of tag versions');
  if (p !== undefined && (typeof p !== 'string' || p === '' || p.length > MAX_PATTERN_LENGTH)) {
    return drop('malformed', '"p" is not a pattern');
  }
  if (h !== undefined && (typeof h !== 'number' || !Number.isSafeInteger(h) || h < 0)) {
    return drop('malformed', '"h" is not a heartbeat number');
  }
  const message: BusMessage = { i };
  if (k !== undefined) message.k = k as string[];
  if (t !== undefined) message.t = t as Record<string, number>;
  if (p !== undefined) message.p = p as string;
  if (f !== undefined) message.f = f as string[];
  if (h !== undefined) message.h = h as number;
  return { ok: true, message };
}

function isKeyList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((key) => typeof key === 'string' && key !== '');
}

function drop(reason: DropReason, detail: string, context?: Record<string, unknown>): Decoded {
  return { ok: false, error: new BusMessageError(reason, detail, context) };
}

/**
 * Encodes a message as one or more texts each under {@link MAX_MESSAGE_LENGTH}: long key lists
 * and tag maps are split across messages, so a receiver never drops one of ours for its size.
 */
export function encodeMessages(id: string, message: Omit<BusMessage, 'i'>): string[] {
  const whole = JSON.stringify({ v: BUS_FORMAT, i: id, ...message });
  if (whole.length <= MAX_MESSAGE_LENGTH) return [whole];
  const texts: string[] = [];
  const budget = MAX_MESSAGE_LENGTH - 200;
  const flush = (part: Omit<BusMessage, 'i'>) => texts.push(JSON.stringify({ v: BUS_FORMAT, i: id, ...part }));
  for (const field of ['k', 'f'] as const) {
    let chunk: string[] = [];
    let size = 0;
    for (const key of message[field] ?? []) {
      const length = JSON.stringify(key).length + 1;
      if (size + length > budget && chunk.length) {
        flush({ [field]: chunk });
        chunk = [];
        size = 0;
      }
      chunk.push(key);
      size += length;
    }
    if (chunk.length) flush({ [field]: chunk });
  }
  if (message.t) {
    let chunk: Record<string, number> = {};
    let size = 0;
    for (const [tag, version] of Object.entries(message.t)) {
      const length = JSON.stringify(tag).length + 20;
      if (size + length > budget && size > 0) {
        flush({ t: chunk });
        chunk = {};
        size = 0;
      }
      chunk[tag] = version;
      size += length;
    }
    if (size > 0) flush({ t: chunk });
  }
  if (message.p !== undefined) flush({ p: message.p });
  if (message.h !== undefined) flush({ h: message.h });
  return texts;
}
