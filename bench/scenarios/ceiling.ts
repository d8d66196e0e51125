import { createClient } from '../../src/index.js';
import type { Scenario } from '../lib/types.js';

/**
 * The machine's ceiling: one bare command through the same client every contender uses, and
 * the same through a client with ioredis auto-pipelining, which redscale's createClient() turns
 * off by default because of what this row shows.
 */
export const ceiling: Scenario = {
  name: 'ceiling',
  description:
    'A bare GET and PING through the createClient() client every contender uses: the most one round trip can do here. The auto-pipelining rows use a client with enableAutoPipelining on (ioredis keeps one batch in flight, so client and server take turns).',
  contenders: ({ redis, redisUrl, prefix }) => {
    const pipelined = createClient({ url: redisUrl, autoPipelining: true });
    const key = `${prefix}:ceiling`;
    return [
      {
        name: 'GET (bare)',
        kind: 'ceiling',
        setup: async () => {
          await redis.set(key, 'x'.repeat(64));
          return () => redis.get(key);
        },
      },
      { name: 'PING (bare)', kind: 'ceiling', setup: async () => () => redis.ping() },
      {
        name: 'GET, autoPipelining on',
        kind: 'ceiling',
        setup: async () => () => pipelined.get(key),
        teardown: async () => pipelined.disconnect(),
      },
    ];
  },
};
