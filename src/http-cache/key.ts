import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** What the key of a request is built from (framework-neutral). */
export interface RequestInfo {
  /** `GET`, `HEAD`… (any case). */
  method: string;
  /** The request target: path and query string, as received (`/users?id=1&b=2`). */
  url: string;
  /** Request headers, names lowercased (Node's `req.headers`). */
  headers: IncomingHttpHeaders;
}

// Keys past this are hashed: the cache caps key length, and a client controls the URL's size.
const MAX_READABLE = 1_024;

/**
 * The canonical form of a request target: dot segments resolved and percent-escapes normalized
 * by the WHATWG URL parser, the query sorted by name then value (so `?b=2&a=1` and `?a=1&b=2`
 * share an entry), and the fragment dropped. Two targets that differ only in those ways are one
 * resource; targets that differ otherwise never share an entry.
 */
export function normalizeTarget(target: string): string {
  let url: URL;
  try {
    url = new URL(target.startsWith('/') ? target : `/${target}`, 'http://h');
  } catch {
    return target;
  }
  const params = [...url.searchParams].sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  const query = new URLSearchParams(params).toString();
  const path = url.pathname.replace(/%[0-9a-f]{2}/g, (hex) => hex.toUpperCase());
  return query ? `${path}?${query}` : path;
}

/**
 * The cache key of a request: `http:<METHOD>:<normalized target>`, then the value of each `vary`
 * header (`|accept-language=en`), or the user's own key in place of the target. Long keys are
 * hashed (sha256) so a huge URL cannot make an oversized key.
 */
export function requestKey(method: string, target: string, headers: IncomingHttpHeaders, vary: string[]): string {
  let key = `http:${method}:${target}`;
  for (const name of vary) {
    const value = headers[name];
    const text = Array.isArray(value) ? value.join(', ') : (value ?? '');
    key += `|${name}=${encodeURIComponent(text)}`;
  }
  if (key.length <= MAX_READABLE) return key;
  return `http:${method}:#${createHash('sha256').update(key).digest('base64url')}`;
}
