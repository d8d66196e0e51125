import { createHash } from 'node:crypto';
import type { StandardSchemaV1 } from '../cache/schema.js';

/** A response as the handler produced it: status, headers (names lowercased) and the whole body. */
export interface CapturedResponse {
  /** The HTTP status code. */
  status: number;
  /** The response headers, names lowercased. */
  headers: Record<string, string | string[]>;
  /** The whole body, as written. */
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
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const ETAG = /^(W\/)?"[\x21\x23-\x7e\x80-\xff]*"$/;

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value) && value >= 0;

function isHeaders(value: unknown): value is Record<string, string | string[]> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const [name, header] of Object.entries(value)) {
    if (!HEADER_NAME.test(name)) return false;
    const values = Array.isArray(header) ? header : [header];
    for (const item of values) if (typeof item !== 'string' || !HEADER_VALUE.test(item)) return false;
  }
  return true;
}

/** Whether `value` is a well-formed {@link StoredResponse} (every field, nothing else). */
export function isStoredResponse(value: unknown): value is StoredResponse {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  let fields = 0;
  for (const _ in entry) fields++;
  return (
    fields === 7 &&
    entry.v === 1 &&
    Number.isInteger(entry.s) &&
    (entry.s as number) >= 200 &&
    (entry.s as number) <= 599 &&
    isHeaders(entry.h) &&
    typeof entry.b === 'string' &&
    BASE64.test(entry.b) &&
    isEtag(entry.e) &&
    isCount(entry.t) &&
    isCount(entry.f)
  );
}

/**
 * Validates an entry read back from Redis (a Standard Schema, as the cache expects): a malformed
 * one is a miss, and the cache deletes it. Hand-written rather than zod: it runs on every hit.
 */
export const storedResponseSchema: StandardSchemaV1<unknown, StoredResponse> = {
  '~standard': {
    version: 1,
    vendor: 'redscale',
    validate: (value) =>
      isStoredResponse(value) ? { value } : { issues: [{ message: 'not a stored HTTP response' }] },
  },
};

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
