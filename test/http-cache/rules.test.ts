import { describe, expect, it } from 'vitest';
import { isStoredResponse, toStored } from '../../src/http-cache/entry.js';
import { etagMatches, notStorable, type StoragePolicy } from '../../src/http-cache/policy.js';
import { Cache, HttpCache, InvalidOptionError, normalizeTarget, requestKey } from '../../src/index.js';
import { connect } from '../harness/context.js';

const policy: StoragePolicy = { statuses: new Set([200, 204]), maxBodySize: 10, storePrivate: false, vary: ['accept'] };
const response = (status: number, headers: Record<string, string | string[]> = {}, body = 'ok') => ({
  status,
  headers,
  body: Buffer.from(body),
});

describe('HTTP cache rules', () => {
  it('normalizes targets: sorted, decoded query; dot segments; fragment dropped', () => {
    expect(normalizeTarget('/items?b=2&a=1')).toBe('/items?a=1&b=2');
    expect(normalizeTarget('/items?a=%31&b=2#top')).toBe('/items?a=1&b=2');
    expect(normalizeTarget('/a/./b/../items')).toBe('/a/items');
    expect(normalizeTarget('/p%c3%a9')).toBe('/p%C3%A9');
    expect(normalizeTarget('/items?a=2&a=1')).toBe('/items?a=1&a=2');
    expect(normalizeTarget('/items')).not.toBe(normalizeTarget('/items?x'));
  });

  it('keys on the vary headers, and hashes oversized keys', () => {
    const en = requestKey('GET', '/x', { accept: 'text/html', 'accept-language': 'en' }, ['accept-language']);
    const fr = requestKey('GET', '/x', { accept: 'text/html', 'accept-language': 'fr' }, ['accept-language']);
    expect(en).toBe('http:GET:/x|accept-language=en');
    expect(fr).not.toBe(en);
    const long = requestKey('GET', `/x?q=${'a'.repeat(5_000)}`, {}, []);
    expect(long).toMatch(/^http:GET:#[\w-]{43}$/);
  });

  it.each([
    [response(500), 'status 500'],
    [response(200, { 'set-cookie': ['a=1'] }), 'set-cookie'],
    [response(200, { 'cache-control': 'public, no-store' }), 'cache-control: public, no-store'],
    [response(200, { 'cache-control': 'Private' }), 'cache-control: private'],
    [response(200, {}, 'x'.repeat(11)), 'body too large'],
    [response(200, { vary: 'Accept, Accept-Encoding' }), 'vary: accept-encoding'],
    [response(200, { vary: '*' }), 'vary: *'],
  ])('refuses to store %o (%s)', (candidate, reason) => {
    expect(notStorable(candidate, policy)).toBe(reason);
  });

  it('stores the response to a request with Authorization only when it says public (RFC 9111 §3.5)', () => {
    expect(notStorable(response(200), policy, true)).toBe('authorization without cache-control: public');
    expect(notStorable(response(200, { 'cache-control': 'max-age=60' }), policy, true)).toBe(
      'authorization without cache-control: public',
    );
    expect(notStorable(response(200, { 'cache-control': 'public, max-age=60' }), policy, true)).toBeUndefined();
    expect(notStorable(response(200, { 'cache-control': 's-maxage=60' }), policy, true)).toBeUndefined();
  });

  it('stores what the policy allows', () => {
    expect(
      notStorable(response(200, { vary: 'accept', 'cache-control': 'public, max-age=5' }), policy),
    ).toBeUndefined();
    expect(notStorable(response(204, {}, ''), policy)).toBeUndefined();
    expect(
      notStorable(response(200, { 'cache-control': 'private' }), { ...policy, storePrivate: true }),
    ).toBeUndefined();
  });

  it('compares entity tags weakly, in lists and with *', () => {
    expect(etagMatches('"a"', 'W/"a"')).toBe(true);
    expect(etagMatches('W/"b", "a"', '"a"')).toBe(true);
    expect(etagMatches('*', '"a"')).toBe(true);
    expect(etagMatches('"b"', '"a"')).toBe(false);
    expect(etagMatches(undefined, '"a"')).toBe(false);
  });

  it('stores an entry only in its exact shape, and never a header that could inject a line', () => {
    const stored = toStored(response(200, { 'content-type': 'text/plain', date: 'x', 'x-cache': 'MISS' }), 1_000);
    expect(stored.h).toEqual({ 'content-type': 'text/plain', etag: stored.e });
    expect(isStoredResponse(JSON.parse(JSON.stringify(stored)))).toBe(true);
    expect(isStoredResponse({ ...stored, extra: 1 })).toBe(false);
    expect(isStoredResponse({ ...stored, h: { 'x-a': 'a\r\nb' } })).toBe(false);
    expect(isStoredResponse({ ...stored, h: { 'X-Upper': 'a' } })).toBe(false);
    expect(isStoredResponse({ ...stored, s: 700 })).toBe(false);
    expect(isStoredResponse({ ...stored, b: 'not base64!' })).toBe(false);
    expect(isStoredResponse({ ...stored, e: 'unquoted' })).toBe(false);
  });

  it('names the bad option', () => {
    const redis = connect('standalone');
    const cache = new Cache({ redis, bus: false });
    const build = (options: object) => () => new HttpCache({ cache, ...options });
    expect(build({ statuses: [500] })).toThrow(InvalidOptionError);
    expect(build({ statuses: [500] })).toThrow(/"statuses\[0\]".*one of 200, 203/);
    expect(build({ vary: ['bad header'] })).toThrow(/"vary\[0\]".*an HTTP header name/);
    expect(build({ ttl: 'soon' })).toThrow(/"ttl"/);
    expect(build({ tll: '1s' })).toThrow(/"tll".*known options/);
    expect(() => new HttpCache({ cache: {} as Cache })).toThrow(/"cache".*a redscale Cache/);
    redis.disconnect();
  });
});
