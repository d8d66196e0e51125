import { createClient, type RedisLike } from '../../src/index.js';
import { evalScript } from '../../src/scripts/eval-script.js';
import type { BenchContext, Contender, Scenario } from '../lib/types.js';

/** A client of its own for one contender, made at setup and closed at teardown. */
function onClient(
  name: string,
  autoPipelining: boolean,
  ctx: BenchContext,
  operation: (redis: RedisLike, n: number) => Promise<unknown>,
): Contender {
  let client: RedisLike | undefined;
  return {
    name,
    kind: name.startsWith('GET') ? 'ceiling' : 'baseline',
    setup: async () => {
      const redis = createClient({ url: ctx.redisUrl, autoPipelining, commandTimeout: 30_000 });
      client = redis;
      await redis.set(`${ctx.prefix}:get`, 'x'.repeat(64));
      let n = 0;
      return () => operation(redis, n++);
    },
    teardown: async () => client?.disconnect(),
  };
}

/** One script call: the limiter's fixed-window check for one of 10,000 identities. */
const scriptCall = (ctx: BenchContext) => (redis: RedisLike, n: number) =>
  evalScript(
    redis,
    'ratelimitFixed',
    [`${ctx.prefix}:{user:${n % 10_000}}:f3600000`],
    [Date.now() + 60_000, 1_000_000_000, 3_600_000],
  );

/**
 * What createClient's `autoPipelining` default should be: a bare GET and a script call (the
 * limiter's own fixed-window script), each through a client with ioredis auto-pipelining off and
 * on, one request at a time and 64 at once.
 */
export const clientDefaults: Scenario = {
  name: 'client-autopipelining',
  description:
    'A bare GET and one script call (the limiter’s fixed-window script, EVALSHA), through createClient() clients with autoPipelining off (the default) and on. ioredis keeps one auto-pipelined batch in flight per node, so client and server take turns.',
  concurrencies: [1, 64],
  contenders: (ctx) => [
    onClient('GET, autoPipelining off', false, ctx, (redis) => redis.get(`${ctx.prefix}:get`)),
    onClient('GET, autoPipelining on', true, ctx, (redis) => redis.get(`${ctx.prefix}:get`)),
    onClient('script call, autoPipelining off', false, ctx, scriptCall(ctx)),
    onClient('script call, autoPipelining on', true, ctx, scriptCall(ctx)),
  ],
};
