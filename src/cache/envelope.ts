/**
 * How an entry is stored: a short header and the serialized value, in one string, so a read is
 * one GET and one parse of the payload (no JSON inside JSON):
 *
 *   `v|<freshUntil>|<staleUntil>|<loadMs>|<tags>|<payload>`
 *
 * `v` is `1` for a value and `E` for a cached loader error (payload = its message). Times are
 * epoch ms from the writer's clock; `tags` is `''` or JSON `{"tag": version}`. The Redis key
 * itself expires at `staleUntil`, on the server's clock.
 */
export interface Envelope {
  kind: 'value' | 'error';
  freshUntil: number;
  staleUntil: number;
  /** How long the loader took (for early refresh), ms. */
  loadMs: number;
  /** Tag versions the entry was written under; undefined when it has no tags. */
  tags: Record<string, number> | undefined;
  /** The serialized value (or the error message). */
  payload: string;
}

/** Encodes an entry for Redis. */
export function encodeEnvelope(entry: Envelope): string {
  // A tag name may contain '|': escape it inside the JSON so the header still splits cleanly.
  const tags = entry.tags ? JSON.stringify(entry.tags).replace(/\|/g, '\\u007c') : '';
  return `${entry.kind === 'error' ? 'E' : '1'}|${entry.freshUntil}|${entry.staleUntil}|${entry.loadMs}|${tags}|${entry.payload}`;
}

/** Decodes an entry, or returns undefined when the text is not one (a foreign or corrupt value). */
export function decodeEnvelope(text: string): Envelope | undefined {
  const kind = text.charCodeAt(0);
  if ((kind !== 49 /* 1 */ && kind !== 69) /* E */ || text.charCodeAt(1) !== 124 /* | */) return undefined;
  const a = text.indexOf('|', 2);
  const b = text.indexOf('|', a + 1);
  const c = text.indexOf('|', b + 1);
  const d = text.indexOf('|', c + 1);
  if (a < 0 || b < 0 || c < 0 || d < 0) return undefined;
  const freshUntil = Number(text.slice(2, a));
  const staleUntil = Number(text.slice(a + 1, b));
  const loadMs = Number(text.slice(b + 1, c));
  if (!Number.isFinite(freshUntil) || !Number.isFinite(staleUntil) || !Number.isFinite(loadMs)) return undefined;
  let tags: Record<string, number> | undefined;
  if (d > c + 1) {
    try {
      tags = JSON.parse(text.slice(c + 1, d)) as Record<string, number>;
    } catch {
      return undefined;
    }
    if (!isVersionMap(tags)) return undefined;
  }
  return { kind: kind === 69 ? 'error' : 'value', freshUntil, staleUntil, loadMs, tags, payload: text.slice(d + 1) };
}

/** Whether `value` is a `{ tag: version }` object with finite numbers (anything read from Redis is untrusted). */
export function isVersionMap(value: unknown): value is Record<string, number> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const key in value) {
    if (!Number.isFinite((value as Record<string, unknown>)[key])) return false;
  }
  return true;
}
