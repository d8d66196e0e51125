/**
 * How an entry is stored: a short header and the serialized value, in one Redis string, so a
 * read is one GET and one parse of the payload (no JSON inside JSON):
 *
 *   `<kind>|<freshUntil>|<staleUntil>|<loadMs>|<tags>|<payload>`
 *
 * `kind` records the payload's format, so readers and writers of every format share one cache
 * during a rollout:
 *
 * | kind | payload |
 * |---|---|
 * | `1` | the serializer's text (the only value format of redscale 0.1) |
 * | `E` | a cached loader error's message |
 * | `B` | the serializer's bytes (a binary serializer: msgpack, protobuf…) |
 * | `Z` | the serializer's text, deflated (`compression`) |
 * | `X` | the serializer's bytes, deflated |
 *
 * A reader that meets a kind it does not know refuses the entry cleanly: a miss, never a crash or
 * a wrong value (redscale 0.1 also deletes it, as it does every entry it cannot decode). Times
 * are epoch ms from the writer's clock; `tags` is `''` or JSON `{"tag": version}`. The Redis key
 * itself expires at `staleUntil`, on the server's clock.
 */
export interface Envelope {
  kind: 'value' | 'error';
  /** How the payload is encoded: the serializer's text or bytes, and whether it is deflated. */
  format: PayloadFormat;
  freshUntil: number;
  staleUntil: number;
  /** How long the loader took (for early refresh), ms. */
  loadMs: number;
  /** Tag versions the entry was written under; undefined when it has no tags. */
  tags: Record<string, number> | undefined;
  /** The serialized value (or the error message), as stored: bytes unless `format` is plain text. */
  payload: string | Buffer;
}

/** A payload's encoding: `text` or `binary` as the serializer gave it, possibly deflated. */
export interface PayloadFormat {
  binary: boolean;
  compressed: boolean;
}

/** An entry as Redis holds it: read as bytes (or, from a script reply, as text). */
export type Stored = string | Buffer;

const PLAIN_TEXT: PayloadFormat = { binary: false, compressed: false };

/** The kind byte of each value format. */
function kindOf(format: PayloadFormat): string {
  if (format.compressed) return format.binary ? 'X' : 'Z';
  return format.binary ? 'B' : '1';
}

const FORMATS: Record<number, PayloadFormat> = {
  49 /* 1 */: PLAIN_TEXT,
  66 /* B */: { binary: true, compressed: false },
  90 /* Z */: { binary: false, compressed: true },
  88 /* X */: { binary: true, compressed: true },
};

/** Whether an entry's kind is one whose payload is bytes (text read from a script reply would mangle it). */
export function isBinaryKind(stored: Stored): boolean {
  const kind = typeof stored === 'string' ? stored.charCodeAt(0) : stored[0];
  return kind === 66 || kind === 90 || kind === 88;
}

/** Encodes an entry for Redis: a string for plain text, bytes for every other format. */
export function encodeEnvelope(entry: Envelope): Stored {
  // A tag name may contain '|': escape it inside the JSON so the header still splits cleanly.
  const tags = entry.tags ? JSON.stringify(entry.tags).replace(/\|/g, '\\u007c') : '';
  const kind = entry.kind === 'error' ? 'E' : kindOf(entry.format);
  const header = `${kind}|${entry.freshUntil}|${entry.staleUntil}|${entry.loadMs}|${tags}|`;
  if (typeof entry.payload === 'string' && kind !== 'Z' && kind !== 'X' && kind !== 'B') return header + entry.payload;
  return Buffer.concat([Buffer.from(header, 'utf8'), toBuffer(entry.payload)]);
}

/**
 * Decodes an entry, or returns undefined when the data is not one this version can read. This is
 * every L2 hit's path: one pass over the header, numbers read from the bytes, no closures, and
 * the payload decoded straight from the reply (no copy) — the same answers as `Number()` on each
 * field, which the slow path still uses for anything but plain digits.
 */
export function decodeEnvelope(data: Stored): Envelope | undefined {
  return typeof data === 'string' ? decodeText(data) : decodeBytes(data);
}

function decodeBytes(data: Buffer): Envelope | undefined {
  const kind = data[0] as number;
  const format = FORMATS[kind];
  if ((format === undefined && kind !== 69) /* E */ || data[1] !== 124 /* | */) return undefined;
  const freshUntil = fieldIn(data, 2);
  const a = fieldEnd;
  const staleUntil = a < 0 ? 0 : fieldIn(data, a + 1);
  const b = fieldEnd;
  const loadMs = b < 0 ? 0 : fieldIn(data, b + 1);
  const c = fieldEnd;
  const d = c < 0 ? -1 : barIn(data, c + 1);
  if (d < 0) return undefined;
  if (!Number.isFinite(freshUntil) || !Number.isFinite(staleUntil) || !Number.isFinite(loadMs)) return undefined;
  let tags: Record<string, number> | undefined;
  if (d > c + 1) {
    tags = tagsIn(data.toString('utf8', c + 1, d));
    if (!tags) return undefined;
  }
  const valueFormat = format ?? PLAIN_TEXT;
  // Plain text (and error messages) are handed over as text; every other format as bytes.
  const payload = valueFormat === PLAIN_TEXT ? data.toString('utf8', d + 1) : data.subarray(d + 1);
  return { kind: kind === 69 ? 'error' : 'value', format: valueFormat, freshUntil, staleUntil, loadMs, tags, payload };
}

/** Where the field {@link fieldIn} last read ends (its `|`), or -1: it had none. */
let fieldEnd = -1;

/**
 * `Number()` of the header field at `from` (up to the next `|`, left in {@link fieldEnd}), in one
 * pass: plain digits (every field redscale writes) are read in place, anything else by `Number()`.
 */
function fieldIn(data: Buffer, from: number): number {
  let value = 0;
  let digits = true;
  let i = from;
  for (; i < data.length; i++) {
    const byte = data[i] as number;
    if (byte === 124) break;
    if (byte < 48 || byte > 57) digits = false;
    else value = value * 10 + (byte - 48);
  }
  if (i === data.length) {
    fieldEnd = -1;
    return 0;
  }
  fieldEnd = i;
  return digits && i > from && i - from <= 15 ? value : Number(data.toString('utf8', from, i));
}

function decodeText(data: string): Envelope | undefined {
  const kind = data.charCodeAt(0);
  const format = FORMATS[kind];
  if ((format === undefined && kind !== 69) /* E */ || data.charCodeAt(1) !== 124 /* | */) return undefined;
  const a = data.indexOf('|', 2);
  if (a < 0) return undefined;
  const b = data.indexOf('|', a + 1);
  if (b < 0) return undefined;
  const c = data.indexOf('|', b + 1);
  if (c < 0) return undefined;
  const d = data.indexOf('|', c + 1);
  if (d < 0) return undefined;
  const freshUntil = numberInText(data, 2, a);
  const staleUntil = numberInText(data, a + 1, b);
  const loadMs = numberInText(data, b + 1, c);
  if (!Number.isFinite(freshUntil) || !Number.isFinite(staleUntil) || !Number.isFinite(loadMs)) return undefined;
  let tags: Record<string, number> | undefined;
  if (d > c + 1) {
    tags = tagsIn(data.slice(c + 1, d));
    if (!tags) return undefined;
  }
  const valueFormat = format ?? PLAIN_TEXT;
  const payload = valueFormat === PLAIN_TEXT ? data.slice(d + 1) : Buffer.from(data.slice(d + 1), 'utf8');
  return { kind: kind === 69 ? 'error' : 'value', format: valueFormat, freshUntil, staleUntil, loadMs, tags, payload };
}

/** The index of the next `|` from `from`, or -1: a loop beats a native `indexOf` call on a short header. */
function barIn(data: Buffer, from: number): number {
  for (let i = from; i < data.length; i++) if (data[i] === 124) return i;
  return -1;
}

/** `Number()` of a header field of an entry read as text; plain digits are read in place. */
function numberInText(data: string, from: number, to: number): number {
  if (to <= from || to - from > 15) return Number(data.slice(from, to));
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = data.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return Number(data.slice(from, to));
    value = value * 10 + digit;
  }
  return value;
}

/** An entry's tag versions, or undefined when they are not a `{ tag: version }` object. */
function tagsIn(json: string): Record<string, number> | undefined {
  let tags: unknown;
  try {
    tags = JSON.parse(json);
  } catch {
    return undefined;
  }
  return isVersionMap(tags) ? tags : undefined;
}

/**
 * Whether data that {@link decodeEnvelope} refused looks like an entry of a format a newer
 * redscale writes (an unknown letter or digit as its kind, then `|`): left alone for the readers
 * that know it, rather than deleted as corrupt.
 */
export function isNewerFormat(data: Stored): boolean {
  const kind = typeof data === 'string' ? data.charCodeAt(0) : data[0];
  const bar = typeof data === 'string' ? data.charCodeAt(1) : data[1];
  if (kind === undefined || bar !== 124 || FORMATS[kind] !== undefined || kind === 69) return false;
  return (kind >= 48 && kind <= 57) || (kind >= 65 && kind <= 90) || (kind >= 97 && kind <= 122);
}

/** Whether `value` is a `{ tag: version }` object with finite numbers (anything read from Redis is untrusted). */
export function isVersionMap(value: unknown): value is Record<string, number> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const key in value) {
    if (!Number.isFinite((value as Record<string, unknown>)[key])) return false;
  }
  return true;
}

function toBuffer(payload: string | Buffer): Buffer {
  return typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
}
