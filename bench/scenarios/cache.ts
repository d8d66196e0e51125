import { runTypeScript } from '../../test/fixtures/spawn.js';
import { CACHE_LIBRARIES, type CacheAdapter } from '../contenders/caches.js';
import { cyclingNames } from '../lib/names.js';
import type { BenchContext, Contender, Scenario, Trial, TrialScenario } from '../lib/types.js';

const KEYS = 1_000;
/** A ~1 KB user profile: what a cache typically holds. */
const VALUE = {
  id: 42,
  name: 'Ada Lovelace',
  email: 'ada@example.com',
  roles: ['admin', 'author', 'reviewer'],
  settings: { theme: 'dark', locale: 'en-GB', notifications: { email: true, push: false, digest: 'weekly' } },
  bio: 'x'.repeat(700),
};
const noLoad = async () => {
  throw new Error('a hit must not load');
};
const nextKey = cyclingNames('user', KEYS);

function hitContender(ctx: BenchContext, library: string): Contender {
  const entry = CACHE_LIBRARIES[library];
  if (!entry) throw new Error(`unknown cache library ${library}`);
  let adapter: CacheAdapter | undefined;
  return {
    name: entry.name,
    kind: entry.kind,
    setup: async () => {
      adapter = await entry.make({ redis: ctx.redis, url: ctx.redisUrl, prefix: `${ctx.prefix}:${library}` });
      for (let i = 0; i < KEYS; i++) await adapter.getOrSet(`user:${i}`, async () => VALUE);
      const cache = adapter;
      return () => cache.getOrSet(nextKey(), noLoad);
    },
    teardown: () => adapter?.close() ?? Promise.resolve(),
  };
}

/** A cache hit from Redis: the value is there and must be read, decoded and returned. */
export const cacheL2Hit: Scenario = {
  name: 'cache-l2-hit',
  description: `A hit on one of ${KEYS} keys holding a ~1 KB JSON value, from Redis (no in-process layer). The ceiling is a bare GET + JSON.parse through the same client.`,
  contenders: (ctx) => [
    {
      name: 'GET + JSON.parse (bare)',
      kind: 'ceiling',
      setup: async () => {
        const text = JSON.stringify(VALUE);
        for (let i = 0; i < KEYS; i++) await ctx.redis.set(`${ctx.prefix}:raw:user:${i}`, text);
        return async () => JSON.parse((await ctx.redis.get(`${ctx.prefix}:raw:${nextKey()}`)) ?? 'null');
      },
    },
    ...['redscale', 'bentocache', 'cache-manager', 'hand-written'].map((library) => hitContender(ctx, library)),
  ],
};

/** A cache hit from the in-process layer: no I/O at all. */
export const cacheL1Hit: Scenario = {
  name: 'cache-l1-hit',
  description: `A hit on one of ${KEYS} keys served from the in-process layer (L1) in front of Redis. The ceiling is a Map lookup behind an async function.`,
  contenders: (ctx) => [
    {
      name: 'Map.get (bare)',
      kind: 'ceiling',
      setup: async () => {
        const map = new Map(Array.from({ length: KEYS }, (_, i) => [`user:${i}`, VALUE]));
        return async () => map.get(nextKey());
      },
    },
    ...['redscale-l1', 'bentocache-l1'].map((library) => hitContender(ctx, library)),
  ],
};

const PROCESSES = 4;
const CALLS = 100;

/** A cold key hit by many instances at once: how many times does the expensive load run? */
export const cacheStampede: TrialScenario = {
  name: 'cache-stampede',
  description: `${PROCESSES} child processes (instances) × ${CALLS} concurrent getOrSet on one cold key, with a 200 ms loader. Counts loader runs across all processes: 1 is ideal.`,
  columns: [{ key: 'loaderRuns', title: 'loader runs', better: 'lower', ideal: 1 }],
  run: async (ctx) => {
    const trials: Trial[] = [];
    for (const library of ['redscale', 'bentocache', 'cache-manager', 'hand-written']) {
      const entry = CACHE_LIBRARIES[library] as (typeof CACHE_LIBRARIES)[string];
      const prefix = `${ctx.prefix}:stampede:${library}`;
      const startAt = Date.now() + 3_000;
      await Promise.all(
        Array.from({ length: PROCESSES }, () =>
          runTypeScript('bench/stampede-worker.ts', {
            library,
            url: ctx.redisUrl,
            prefix,
            calls: CALLS,
            loaderMs: 200,
            startAt,
          }),
        ),
      );
      trials.push({
        contender: entry.name,
        kind: entry.kind,
        metrics: { loaderRuns: Number(await ctx.redis.get(`${prefix}:loader-runs`)) },
      });
    }
    return trials;
  },
};
