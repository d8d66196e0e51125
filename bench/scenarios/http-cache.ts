import { Agent, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Redis } from 'ioredis';
import { httpCache } from '../../src/adapters/express/index.js';
import { Cache } from '../../src/index.js';
import type { BenchContext, Contender, Scenario } from '../lib/types.js';

/** A ~1 KB JSON product list: what a cached read route typically returns. */
const BODY = {
  products: Array.from({ length: 10 }, (_, i) => ({ id: i, name: `Product ${i}`, price: 10 + i, tags: ['a', 'b'] })),
  description: 'x'.repeat(300),
};
/** The handler's own work on a miss (a database query), simulated. */
const HANDLER_MS = 10;
const work = () => new Promise((resolve) => setTimeout(resolve, HANDLER_MS));

/**
 * The hand-written middleware of a typical scaling plan (../shared/seeds/004 §3.1), as written:
 * `res.json` wrapped inside a GET/SETEX getOrSet, `X-Cache: HIT` on a hit.
 */
function handWrittenCacheResponse(redis: Redis, prefix: string, ttlSeconds: number): express.RequestHandler {
  const getOrSet = async (key: string, fetcher: () => Promise<unknown>) => {
    try {
      const cached = await redis.get(`${prefix}:${key}`);
      if (cached) return JSON.parse(cached);
    } catch {
      // the plan logs and falls through
    }
    const data = await fetcher();
    try {
      await redis.setex(`${prefix}:${key}`, ttlSeconds, JSON.stringify(data));
    } catch {
      // the plan logs and carries on
    }
    return data;
  };
  return async (req, res, next) => {
    if (req.method !== 'GET') return next();
    const cacheKey = `${req.path}:${JSON.stringify(req.query)}`;
    try {
      const cached = await getOrSet(
        cacheKey,
        () =>
          new Promise((resolve) => {
            const originalJson = res.json.bind(res);
            res.json = (data: unknown) => {
              resolve(data);
              return originalJson(data);
            };
            next();
          }),
      );
      if (cached !== undefined && !res.headersSent) {
        res.setHeader('X-Cache', 'HIT');
        res.json(cached);
      }
    } catch {
      next();
    }
  };
}

/** One Express app on a free port, and a keep-alive GET against it. */
function serverContender(
  name: string,
  kind: Contender['kind'],
  build: (app: express.Express) => Promise<(() => Promise<void>) | undefined>,
): Contender {
  let server: Server | undefined;
  let agent: Agent | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  return {
    name,
    kind,
    setup: async () => {
      const app = express();
      app.set('etag', false);
      cleanup = await build(app);
      server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server?.once('listening', resolve));
      const { port } = server.address() as AddressInfo;
      const client = new Agent({ keepAlive: true, maxSockets: 256 });
      agent = client;
      const get = () =>
        new Promise<void>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port, path: '/products?page=1', agent: client }, (res) => {
            if (res.statusCode !== 200) reject(new Error(`${name}: status ${res.statusCode}`));
            res.resume();
            res.once('end', () => resolve());
          });
          req.once('error', reject);
          req.end();
        });
      await get();
      return get;
    },
    teardown: async () => {
      agent?.destroy();
      server?.closeAllConnections();
      await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
      await cleanup?.();
    },
  };
}

/** A read route served from the cache, against the same route uncached and against the hand-written middleware. */
export const httpCacheScenario: Scenario = {
  name: 'http-cache',
  description: `GET of a ~1 KB JSON route on Express, over keep-alive HTTP, whose handler takes ${HANDLER_MS} ms (a database read). Cached routes are measured on hits. The ceiling is the route with no handler work at all. At concurrency 1 the table shows latency; at 32, how much CPU a hit costs.`,
  concurrencies: [1, 32],
  contenders: (ctx: BenchContext) => [
    serverContender('Express route, no handler work (bare)', 'ceiling', async (app) => {
      app.get('/products', (_req, res) => {
        res.json(BODY);
      });
      return undefined;
    }),
    serverContender(`Express route, uncached (${HANDLER_MS} ms handler)`, 'baseline', async (app) => {
      app.get('/products', async (_req, res) => {
        await work();
        res.json(BODY);
      });
      return undefined;
    }),
    serverContender('redscale httpCache (Express)', 'redscale', async (app) => {
      const cache = new Cache({ redis: ctx.redis, prefix: `${ctx.prefix}:redscale`, bus: false });
      app.get('/products', httpCache({ cache, ttl: '1h' }), async (_req, res) => {
        await work();
        res.json(BODY);
      });
      return () => cache.close();
    }),
    serverContender('hand-written res.json-wrapping middleware', 'hand-written', async (app) => {
      app.get(
        '/products',
        handWrittenCacheResponse(ctx.redis as Redis, `${ctx.prefix}:hand-written`, 3_600),
        async (_req, res) => {
          await work();
          res.json(BODY);
        },
      );
      return undefined;
    }),
  ],
};
