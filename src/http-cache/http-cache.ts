import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Cache } from '../cache/cache.js';
import { type Reply, ResponseCapture, writeReply } from './capture.js';
import { type CapturedResponse, type StoredResponse, storedResponseSchema, toStored } from './entry.js';
import { normalizeTarget, type RequestInfo, requestKey } from './key.js';
import { type HttpCacheOptions, parseHttpCacheOptions, type ResolvedHttpCacheOptions } from './options.js';
import { etagMatches, notStorable, type StoragePolicy } from './policy.js';

/** `X-Cache` values: served fresh from the cache, produced by the handler, or served stale while refreshing. */
export type CacheStatus = 'HIT' | 'MISS' | 'STALE';

/**
 * What an adapter does with a request: `bypass` — run the handler as if uncached; `hit` — send
 * `reply` without running the handler; `run` — run the handler: its response is captured, and
 * the HTTP cache itself writes the final response (with `X-Cache`, `ETag`…) to the Node response.
 */
export type Decision = { kind: 'bypass' } | { kind: 'hit'; reply: Reply; status: CacheStatus } | { kind: 'run' };

/**
 * Dispatches an internal copy of a request (same method and URL, these headers) through the
 * app, so a stale entry can be refreshed after its own request was answered.
 */
export type Replay = (headers: IncomingHttpHeaders) => void;

/** The header that marks an internal refresh request; its value is a one-time token. */
export const REFRESH_HEADER = 'x-redscale-refresh';
// A refresh whose internal request never answers is given up on after this.
const REFRESH_TIMEOUT_MS = 30_000;
const CONDITIONAL = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range'];

class UncacheableResponse extends Error {
  constructor(reason: string) {
    super(`redscale: response not stored (${reason})`);
    this.name = 'UncacheableResponse';
  }
}

interface PendingRefresh {
  resolve(response: StoredResponse): void;
  reject(error: unknown): void;
}

/**
 * Framework-neutral HTTP response caching on a {@link Cache}: builds the key, runs the handler
 * at most once per key per cold miss across instances (the cache's fill lock), stores status,
 * headers and body, answers `If-None-Match` with 304, and serves `X-Cache`, `ETag`, `Age` and
 * `Cache-Control`. A Redis failure never fails a request: the handler runs as if uncached.
 * Adapters (Express middleware, Fastify route config, Nest interceptor) map their framework onto
 * {@link HttpCache.decide}.
 */
export class HttpCache<Req = unknown> {
  readonly #options: ResolvedHttpCacheOptions;
  readonly #policy: StoragePolicy;
  readonly #refreshes = new Map<string, PendingRefresh>();

  /** @throws InvalidOptionError naming the bad option. */
  constructor(options: HttpCacheOptions<Req>, where = 'HTTP response caching') {
    this.#options = parseHttpCacheOptions(options, where);
    const { statuses, maxBodySize, storePrivate, vary } = this.#options;
    this.#policy = { statuses: new Set(statuses), maxBodySize, storePrivate, vary };
  }

  /** The cache responses are stored in (to `invalidateTags` from a write route). */
  get cache(): Cache {
    return this.#options.cache;
  }

  /**
   * Decides what happens to one request. `res` is the Node response the framework writes to;
   * `replay` (optional) lets a stale entry be refreshed in the background. Never rejects.
   */
  async decide(req: Req, info: RequestInfo, res: ServerResponse, replay?: Replay): Promise<Decision> {
    const method = info.method.toUpperCase();
    if (method !== 'GET' && method !== 'HEAD') return { kind: 'bypass' };
    const token = info.headers[REFRESH_HEADER];
    if (token !== undefined) {
      // Only a token this process handed out makes a refresh; any other is dropped unseen.
      delete info.headers[REFRESH_HEADER];
      const pending = typeof token === 'string' ? this.#refreshes.get(token) : undefined;
      if (pending) {
        this.#refreshes.delete(token as string);
        this.#refresh(res, pending, info.headers.authorization !== undefined && !this.#options.key);
        return { kind: 'run' };
      }
    }
    let key: string;
    let tags: string[] | undefined;
    try {
      key = this.#key(req, info);
      const given = this.#options.tags;
      tags = typeof given === 'function' ? given(req) : given;
    } catch (error) {
      this.#report(error);
      return { kind: 'bypass' };
    }
    const conditional = pick(info.headers, CONDITIONAL);
    // With the default key, every client shares an entry: see notStorable.
    const authorized = info.headers.authorization !== undefined && !this.#options.key;
    if (method === 'HEAD') return this.#head(key, conditional, res);

    const { cache, ttl, staleFor } = this.#options;
    let ran = false;
    let answered = false;
    // The handler's storable response until it is sent: whatever the cache does, it goes out.
    let unsent: CapturedResponse | undefined;
    return new Promise<Decision>((resolve) => {
      const loader = async (): Promise<StoredResponse> => {
        if (answered) return this.#replay(info.headers, replay);
        ran = true;
        // The handler must produce the full response: a 304 made from the client's validators
        // would be stored as the resource. The cache answers conditionals itself.
        for (const name of CONDITIONAL) delete info.headers[name];
        res.setHeader('x-cache', 'MISS');
        const capture = new ResponseCapture(res, this.#options.maxBodySize);
        resolve({ kind: 'run' });
        const result = await capture.done;
        const stored = this.#stored(result, res, authorized);
        if (result.kind === 'complete') unsent = result.response;
        return stored;
      };
      const options = { ttl: ttl + staleFor, staleFor: 0, schema: storedResponseSchema, ...(tags && { tags }) };
      cache.getOrSet(key, loader, options).then(
        (stored) => {
          if (!ran) {
            answered = true;
            const status = Date.now() - stored.t >= stored.f ? 'STALE' : 'HIT';
            if (status === 'STALE') this.#refreshStale(key, tags, loader);
            resolve({ kind: 'hit', reply: this.#reply(stored, status, conditional, false), status });
            return;
          }
          unsent = undefined;
          writeReply(res, this.#reply(stored, 'MISS', conditional, false));
        },
        (error: unknown) => {
          if (!(error instanceof UncacheableResponse)) this.#report(error);
          if (ran) {
            // Not storable: already sent as the handler made it, or streamed. Anything else
            // (the cache failed after the handler answered): send the handler's response now.
            if (unsent) writeReply(res, { ...unsent, headers: { ...unsent.headers, 'x-cache': 'MISS' } });
            unsent = undefined;
            return;
          }
          answered = true;
          // A shared load whose response could not be stored: this request runs its own handler.
          res.setHeader('x-cache', 'MISS');
          resolve({ kind: 'bypass' });
        },
      );
    });
  }

  #key(req: Req, info: RequestInfo): string {
    const { key, vary } = this.#options;
    const target = key ? String(key(req)) : normalizeTarget(info.url);
    return requestKey('GET', target, info.headers, vary);
  }

  /** HEAD is answered from the GET entry; on a miss the handler runs uncached (a HEAD has no body to store). */
  async #head(key: string, conditional: IncomingHttpHeaders, res: ServerResponse): Promise<Decision> {
    const stored = await this.#options.cache.get(key, { schema: storedResponseSchema }).catch(() => undefined);
    if (!stored) {
      res.setHeader('x-cache', 'MISS');
      return { kind: 'bypass' };
    }
    const status = Date.now() - stored.t >= stored.f ? 'STALE' : 'HIT';
    return { kind: 'hit', reply: this.#reply(stored, status, conditional, true), status };
  }

  /**
   * A stale entry is refreshed in the background by one request across instances: its store
   * is what every instance then reads. The cache's own stale-while-revalidate is not used, since
   * its refresh would call this request's loader after the request was answered.
   */
  #refreshStale(key: string, tags: string[] | undefined, loader: () => Promise<StoredResponse>): void {
    const { cache, ttl, staleFor } = this.#options;
    const lockKey = `${key}#refresh`;
    // `getOrSet` on a marker key is the cross-instance single flight: only the instance that
    // runs its loader refreshes; the marker lives as long as one refresh may take.
    cache
      .getOrSet(
        lockKey,
        async () => {
          const stored = await loader();
          await cache.set(key, stored, { ttl: ttl + staleFor, staleFor: 0, ...(tags && { tags }) });
          return 1;
        },
        { ttl: 5_000 },
      )
      .catch((error: unknown) => this.#report(error));
  }

  #replay(headers: IncomingHttpHeaders, replay: Replay | undefined): Promise<StoredResponse> {
    if (!replay) return Promise.reject(new UncacheableResponse('no way to replay the request'));
    return new Promise<StoredResponse>((resolve, reject) => {
      const token = randomUUID();
      const timer = setTimeout(() => {
        this.#refreshes.delete(token);
        reject(new UncacheableResponse('the refresh request did not answer'));
      }, REFRESH_TIMEOUT_MS);
      timer.unref();
      const settle =
        <A extends unknown[]>(fn: (...args: A) => void) =>
        (...args: A) => {
          clearTimeout(timer);
          fn(...args);
        };
      this.#refreshes.set(token, { resolve: settle(resolve), reject: settle(reject) });
      const copy: IncomingHttpHeaders = { ...headers, [REFRESH_HEADER]: token };
      for (const name of CONDITIONAL) delete copy[name];
      try {
        replay(copy);
      } catch (error) {
        this.#refreshes.delete(token);
        settle(reject)(error);
      }
    });
  }

  /** The internal refresh request: capture the handler's response and hand it to the waiting refresh. */
  #refresh(res: ServerResponse, pending: PendingRefresh, authorized: boolean): void {
    const capture = new ResponseCapture(res, this.#options.maxBodySize);
    capture.done.then(
      (result) => {
        try {
          const stored = this.#stored(result, res, authorized);
          pending.resolve(stored);
          writeReply(res, this.#reply(stored, 'MISS', {}, false));
        } catch (error) {
          pending.reject(error);
        }
      },
      (error: unknown) => pending.reject(error),
    );
  }

  /** A capture as an entry to store, or an UncacheableResponse (after sending the response as it was). */
  #stored(result: Awaited<ResponseCapture['done']>, res: ServerResponse, authorized: boolean): StoredResponse {
    if (result.kind === 'passthrough') throw new UncacheableResponse(result.reason);
    const why = notStorable(result.response, this.#policy, authorized);
    if (why) {
      const { status, headers, body } = result.response;
      writeReply(res, { status, headers, body });
      throw new UncacheableResponse(why);
    }
    return toStored(result.response, this.#options.ttl);
  }

  #reply(stored: StoredResponse, status: CacheStatus, conditional: IncomingHttpHeaders, head: boolean): Reply {
    const headers: Record<string, string | string[]> = { ...stored.h, 'x-cache': status };
    if (status !== 'MISS') headers.age = String(Math.max(0, Math.floor((Date.now() - stored.t) / 1_000)));
    if (this.#options.cacheControl) headers['cache-control'] = this.#options.cacheControl;
    if (etagMatches(conditional['if-none-match'], stored.e)) {
      return { status: 304, headers, body: undefined };
    }
    const body = Buffer.from(stored.b, 'base64');
    if (stored.s !== 204 && stored.s !== 304) headers['content-length'] = String(body.length);
    return { status: stored.s, headers, body: head || stored.s === 204 ? undefined : body };
  }

  #report(error: unknown): void {
    try {
      this.#options.onError?.(error);
    } catch {
      // A throwing error hook must not break the request.
    }
  }
}

function pick(headers: IncomingHttpHeaders, names: string[]): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const name of names) if (headers[name] !== undefined) out[name] = headers[name];
  return out;
}
