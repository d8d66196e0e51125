import type { Scenario } from '../lib/types.js';

/** The machine's ceiling: one bare command through the same client every contender uses. */
export const ceiling: Scenario = {
  name: 'ceiling',
  description: 'A bare GET and a bare PING through a createClient() client: the most one round trip can do here.',
  contenders: ({ redis, prefix }) => [
    {
      name: 'GET (bare)',
      kind: 'ceiling',
      setup: async () => {
        await redis.set(`${prefix}:ceiling`, 'x'.repeat(64));
        return () => redis.get(`${prefix}:ceiling`);
      },
    },
    { name: 'PING (bare)', kind: 'ceiling', setup: async () => () => redis.ping() },
  ],
};
