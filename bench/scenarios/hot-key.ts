import type { Redis } from 'ioredis';
import { fixedWindow, RateLimiter, type RateLimiterOptions } from '../../src/index.js';
import type { Trial, TrialScenario } from '../lib/types.js';
import { countByNode, drive, type ServerTime, serverTimeOf } from './scale.js';

const OPERATIONS = 6_000;
const CONCURRENCY = 64;

/** One hot identity under one limiter setting. */
interface HotCase {
  name: string;
  options: Partial<RateLimiterOptions>;
  /** Limit of the identity: huge (every call admitted, so every call is a real check) or small (flooded). */
  limit: number;
}

const CASES: HotCase[] = [
  { name: 'admitted, batch: false', options: { batch: false }, limit: 1e9 },
  { name: 'admitted, batched (default)', options: {}, limit: 1e9 },
  { name: 'flooded, localDenyCache: false', options: { localDenyCache: false }, limit: 10 },
  { name: 'flooded, local deny cache (default)', options: {}, limit: 10 },
];

/**
 * One identity's keys live in one slot, so one Redis core serves them whatever the Cluster's size.
 * This measures what one check of a hot identity costs that core (Redis CPU per check, on a
 * standalone server of the bench's own) and the ceiling it implies (1 s ÷ that cost: a client on a
 * 2-core machine cannot reach it, so it is derived), with batching and the local deny cache on and
 * off.
 */
export const hotKey: TrialScenario = {
  name: 'hot-key',
  description: `One identity checked ${OPERATIONS.toLocaleString('en-US')} times at concurrency ${CONCURRENCY} on the bench's standalone Redis. "ceiling" is 1 s ÷ Redis CPU per check: the checks/s one Redis core could serve for one identity (derived, as no client on this machine can reach it). Admitted: a limit never reached, so every call is a real check; flooded: a limit of 10, so almost every call is refused.`,
  columns: [
    { key: 'commandsPerCheck', title: 'commands/check', better: 'lower' },
    { key: 'cpuUsPerCheck', title: 'Redis CPU µs/check', better: 'lower' },
    { key: 'ceiling', title: 'ceiling, checks/s per Redis core', better: 'higher' },
    { key: 'opsPerSec', title: 'ops/s here', better: 'higher' },
  ],
  estimateMs: () => CASES.length * 3_000,
  run: async (ctx) => {
    const trials: Trial[] = [];
    const node = ctx.redis as Redis;
    for (const [index, hot] of CASES.entries()) {
      const limiter = new RateLimiter({
        redis: ctx.redis,
        prefix: `${ctx.prefix}:${index}`,
        limits: fixedWindow({ limit: hot.limit, window: '1h', anchor: 'first-hit' }),
        ...hot.options,
      });
      await drive(() => limiter.consume('hot'), 500, CONCURRENCY);
      const before = await serverTimeOf(node);
      let result = { ms: 0, failures: 0 };
      const counts = await countByNode(async () => {
        result = await drive(() => limiter.consume('hot'), OPERATIONS, CONCURRENCY);
      });
      const after = await serverTimeOf(node);
      const commands = [...counts.values()].reduce((sum, entry) => sum + entry.data, 0);
      const cpuUs = (after as ServerTime).cpuUs - (before as ServerTime).cpuUs;
      const cpuUsPerCheck = cpuUs / OPERATIONS;
      trials.push({
        contender: `redscale RateLimiter, one identity ${hot.name}`,
        kind: 'redscale',
        metrics: {
          commandsPerCheck: Math.round((commands / OPERATIONS) * 1_000) / 1_000,
          cpuUsPerCheck: Math.round(cpuUsPerCheck * 100) / 100,
          ceiling: cpuUsPerCheck > 0 ? Math.round(1_000_000 / cpuUsPerCheck) : 0,
          opsPerSec: Math.round((OPERATIONS / result.ms) * 1_000),
        },
      });
    }
    return trials;
  },
};
