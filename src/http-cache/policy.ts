import type { CapturedResponse } from './entry.js';

/** Statuses a response may be stored with (RFC 9111 §4.2.2's heuristically cacheable ones). */
export const STORABLE_STATUSES = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] as const;

/** What {@link notStorable} checks a response against. */
export interface StoragePolicy {
  statuses: ReadonlySet<number>;
  maxBodySize: number;
  storePrivate: boolean;
  vary: readonly string[];
}

function headerText(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}

/**
 * Why a response must not be stored, or `undefined` when it may be. Never stored: another
 * status than the route allows, a `Set-Cookie` (it belongs to one client), `Cache-Control:
 * private` / `no-store` / `no-cache` unless `storePrivate`, a body over `maxBodySize`, and a
 * `Vary` on a header the key does not include (`Vary: *` included): serving it to a client
 * with another value of that header would be wrong. And, as RFC 9111 §3.5 asks of a shared
 * cache, the response to a request that carried `Authorization` (`authorized`) only when it
 * says `public`, `s-maxage` or `must-revalidate`.
 */
export function notStorable(response: CapturedResponse, policy: StoragePolicy, authorized = false): string | undefined {
  if (!policy.statuses.has(response.status)) return `status ${response.status}`;
  if (response.headers['set-cookie'] !== undefined) return 'set-cookie';
  const directives = headerText(response.headers['cache-control']).toLowerCase();
  if (!policy.storePrivate) {
    if (/(^|[\s,])(private|no-store|no-cache)(?=$|[\s,=])/.test(directives)) return `cache-control: ${directives}`;
  }
  if (authorized && !/(^|[\s,])(public|s-maxage|must-revalidate)(?=$|[\s,=])/.test(directives)) {
    return 'authorization without cache-control: public';
  }
  if (response.body.length > policy.maxBodySize) return 'body too large';
  const vary = headerText(response.headers.vary)
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  for (const name of vary) {
    if (name === '*' || !policy.vary.includes(name)) return `vary: ${name}`;
  }
  return undefined;
}

/** Whether `If-None-Match` matches `etag` (weak comparison, RFC 9110 §13.1.2; `*` matches any). */
export function etagMatches(ifNoneMatch: string | string[] | undefined, etag: string): boolean {
  const text = headerText(ifNoneMatch).trim();
  if (text === '') return false;
  if (text === '*') return true;
  const opaque = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag);
  const wanted = opaque(etag);
  return text.split(',').some((tag) => opaque(tag.trim()) === wanted);
}
