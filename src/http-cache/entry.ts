import { createHash } from 'node:crypto';
import { z } from 'zod';

/** A response as the handler produced it: status, headers (names lowercased) and the whole body. */
export interface CapturedResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/**
 * A response as it is stored in the cache: inside the cache's (JSON) value, the body as base64,
 * so any body — HTML, images, a stream's bytes — survives the serializer unchanged.
 */
export interface StoredResponse {
  /** Format version. */
  v: 1;
  /** Status code. */
  s: number;
  /** Headers to replay (lowercased names; hop-by-hop and per-response ones removed). */
  h: Record<string, string | string[]>;
  /** Body, base64. */
  b: string;
  /** Entity tag (the handler's own, or a hash of the body). */
  e: string;
  /** When it was stored (ms since the epoch), for `Age` and to tell a stale entry. */
  t: number;
  /** How long it is fresh (ms): older than this it is served as STALE. */
  f: number;
}

// Header values read back from Redis are replayed to clients: no control characters, so a
// tampered entry cannot inject headers or make `setHeader` throw mid-request.
const headerValue = z.string().regex(/^[\t\x20-\x7e\x80-\xff]*$/);
const ETAG = /^(W\/)?"[\x21\x23-\x7e\x80-\xff]*"$/;

/** Validates an entry read back from Redis: a malformed one is a miss (and the cache deletes it). */
export const storedResponseSchema = z.strictObject({
  v: z.literal(1),
  s: z.number().int().min(200).max(599),
  h: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9a-z-]+$/), z.union([headerValue, z.array(headerValue)])),
  b: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/),
  e: z.string().regex(ETAG),
  t: z.number().finite().nonnegative(),
  f: z.number().finite().nonnegative(),
});

/**
 * Headers never stored: hop-by-hop ones, those recomputed on every reply, and `set-cookie`
 * (a response carrying one is never stored at all).
 */
const NOT_STORED = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-connection',
  'date',
  'age',
  'x-cache',
  'set-cookie',
]);

/** Whether `value` is a syntactically valid entity tag (strong or weak). */
export function isEtag(value: unknown): value is string {
  return typeof value === 'string' && ETAG.test(value);
}

/** The stored form of a captured response. */
export function toStored(response: CapturedResponse, freshMs: number, now = Date.now()): StoredResponse {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (!NOT_STORED.has(name)) headers[name] = value;
  }
  const own = headers.etag;
  const etag = isEtag(own) ? own : `"${createHash('sha1').update(response.body).digest('base64url')}"`;
  headers.etag = etag;
  return { v: 1, s: response.status, h: headers, b: response.body.toString('base64'), e: etag, t: now, f: freshMs };
}
