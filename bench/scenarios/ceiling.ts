import { createClient } from '../../src/index.js';
import type { BenchContext, Contender, Scenario } from '../lib/types.js';

/** One bare GET of a 64-byte value through the shared client: the row every scenario compares to. */
export const bareGet = ({ redis, prefix }: BenchContext): Contender => ({
  name: 'GET (bare)',
  kind: 'ceiling',
  setup: async () => {
    const key = `${prefix}:ceiling`;
    await redis.set(key, 'x'.repeat(64));
    return () => redis.get(key);
  },
});

/** One bare PING through the shared client: a round trip with no key at all. */
export const barePing = ({ redis }: BenchContext): Contender => ({
  name: 'PING (bare)',
  kind: 'ceiling',
  setup: async () => () => redis.ping(),
});

/**
 * The machine's ceiling: one bare command through the same client every contender uses, and
 * the same through a client with ioredis auto-pipelining, which redscale's createClient() turns
 * off by default because of what this row shows.
 */
export const ceiling: Scenario = {
  name: 'ceiling',
  description:
    'A bare GET and PING through the createClient() client every contender uses: the most one round trip can do here. The auto-pipelining rows use a client with enableAutoPipelining on (ioredis keeps one batch in flight, so client and server take turns).',
  contenders: (ctx) => {
    let pipelined: ReturnType<typeof createClient> | undefined;
    return [
      bareGet(ctx),
      barePing(ctx),
      {
        name: 'GET, autoPipelining on',
        kind: 'ceiling',
        setup: async () => {
          const client = createClient({ url: ctx.redisUrl, autoPipelining: true });
          pipelined = client;
          return () => client.get(`${ctx.prefix}:ceiling`);
        },
        teardown: async () => pipelined?.disconnect(),
      },
    ];
  },
};
