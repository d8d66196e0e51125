import { Redis as Redis5 } from 'ioredis5';
import { createClient, fixedWindow, RateLimiter, type RedisLike, slidingWindow } from '../../src/index.js';
import { cyclingNames } from '../lib/names.js';
import type { BenchContext, Contender, Scenario } from '../lib/types.js';

type Version = 5 | 6;
const nextUser = cyclingNames('user', 10_000);

/** A client of the given ioredis major, with createClient's settings where they matter here. */
function clientOf(version: Version, url: string): RedisLike {
  if (version === 6) return createClient({ url, commandTimeout: 30_000 });
  // Same shape as createClient's: no auto-pipelining, a command timeout, no offline queue growth.
  return new Redis5(url, { commandTimeout: 30_000, maxRetriesPerRequest: 1 }) as unknown as RedisLike;
}

function onVersion(
  version: Version,
  name: string,
  kind: Contender['kind'],
  ctx: BenchContext,
  make: (redis: RedisLike) => Promise<() => Promise<unknown>>,
): Contender {
  let client: RedisLike | undefined;
  return {
    name: `${name}, ioredis ${version}`,
    kind,
    setup: async () => {
      client = clientOf(version, ctx.redisUrl);
      return make(client);
    },
    teardown: async () => client?.disconnect(),
  };
}

const limiterOn =
  (ctx: BenchContext, version: Version, three: boolean) =>
  async (redis: RedisLike): Promise<() => Promise<unknown>> => {
    const limit = 1_000_000_000;
    const limiter = new RateLimiter({
      redis,
      prefix: `${ctx.prefix}:v${version}:${three ? 3 : 1}`,
      limits: three
        ? [
            slidingWindow({ limit, window: '1s' }),
            fixedWindow({ limit, window: '1m' }),
            fixedWindow({ limit, window: '1d' }),
          ]
        : fixedWindow({ limit, window: '1h' }),
    });
    return () => limiter.consume(nextUser());
  };

/**
 * The same operations through ioredis 5 and ioredis 6 (both in redscale's peer range): ioredis 6
 * decodes replies with a new parser, and how much each reply costs the client differs.
 */
export const ioredisVersions: Scenario = {
  name: 'ioredis-versions',
  description:
    'A bare GET and a limiter check (one fixed window; three limits) through ioredis 5 and ioredis 6 clients of their own, both in the peer range. Ratios are against the GET of ioredis 6, the version the other scenarios use.',
  contenders: (ctx) =>
    ([6, 5] as const).flatMap((version) => [
      onVersion(version, 'GET (bare)', version === 6 ? 'ceiling' : 'baseline', ctx, async (redis) => {
        const key = `${ctx.prefix}:v${version}:get`;
        await redis.set(key, 'x'.repeat(64));
        return () => redis.get(key);
      }),
      onVersion(version, 'redscale fixedWindow', 'redscale', ctx, limiterOn(ctx, version, false)),
      onVersion(version, 'redscale 3 limits', 'redscale', ctx, limiterOn(ctx, version, true)),
    ]),
};
