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

/** Decodes an entry, or returns undefined when the data is not one this version can read. */
export function decodeEnvelope(data: Stored): Envelope | undefined {
  const bytes = typeof data !== 'string';
  const at = (i: number) => (bytes ? (data[i] as number) : data.charCodeAt(i));
  const find = (from: number) => (bytes ? data.indexOf(0x7c, from) : (data as string).indexOf('|', from));
  const slice = (from: number, to?: number) =>
    bytes ? data.toString('utf8', from, to) : (data as string).slice(from, to);
  const kind = at(0);
  const format = FORMATS[kind];
  if ((format === undefined && kind !== 69) /* E */ || at(1) !== 124 /* | */) return undefined;
  const a = find(2);
  const b = find(a + 1);
  const c = find(b + 1);
  const d = find(c + 1);
  if (a < 0 || b < 0 || c < 0 || d < 0) return undefined;
  const freshUntil = Number(slice(2, a));
  const staleUntil = Number(slice(a + 1, b));
  const loadMs = Number(slice(b + 1, c));
  if (!Number.isFinite(freshUntil) || !Number.isFinite(staleUntil) || !Number.isFinite(loadMs)) return undefined;
  let tags: Record<string, number> | undefined;
  if (d > c + 1) {
    try {
      tags = JSON.parse(slice(c + 1, d)) as Record<string, number>;
    } catch {
      return undefined;
    }
    if (!isVersionMap(tags)) return undefined;
  }
  const valueFormat = format ?? PLAIN_TEXT;
  // Plain text (and error messages) are handed over as text; every other format as bytes.
  const plain = !valueFormat.binary && !valueFormat.compressed;
  const payload = plain ? slice(d + 1) : bytes ? (data as Buffer).subarray(d + 1) : Buffer.from(slice(d + 1), 'utf8');
  return { kind: kind === 69 ? 'error' : 'value', format: valueFormat, freshUntil, staleUntil, loadMs, tags, payload };
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
