import { RedisHealth } from '../../src/index.js';
import type { Scenario } from '../lib/types.js';
import { barePing } from './ceiling.js';

/** What a readiness probe costs: one full health check, end to end. */
export const health: Scenario = {
  name: 'health',
  description: 'One RedisHealth.check() (PING, INFO and a write probe, in parallel) against a PING, one at a time.',
  // check() shares one check among concurrent callers; measure what a single probe costs.
  load: { concurrency: 1 },
  contenders: (ctx) => [
    barePing(ctx),
    {
      name: 'redscale RedisHealth.check()',
      kind: 'redscale',
      setup: async () => {
        const checker = new RedisHealth({ redis: ctx.redis, prefix: ctx.prefix });
        return () => checker.check();
      },
    },
  ],
};
