import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { Cache, createClient } from '../../src/index.js';
import { onPath } from '../../test/harness/find-redis.js';
import { RedisServer } from '../../test/harness/redis-server.js';
import { countSentCommands } from '../lib/commands.js';
import type { Trial, TrialScenario } from '../lib/types.js';

const OUTSIDE = 1_000;

/**
 * The seed's delPattern (../shared/seeds/004, section 1.3, and 000 task 4): KEYS then one DEL of
 * everything it found — both commands block Redis for the whole keyspace.
 */
async function seedDelPattern(redis: Redis, pattern: string): Promise<void> {
  const keys = await redis.keys(pattern);
  if (keys.length > 0) await redis.del(...keys);
}

/** Deleting every key of a pattern: how long it takes, and how long Redis is blocked at once. */
export const patternInvalidation: TrialScenario = {
  name: 'pattern-invalidation',
  description:
    'Delete N keys matching a pattern (with 1,000 keys outside it that must survive), on a server of its own with SLOWLOG recording every command. "longest command" is how long Redis was blocked at once — what every other client waits through.',
  columns: [
    { key: 'ms', title: 'total ms', better: 'lower' },
    { key: 'longestCommandMs', title: 'longest command ms', better: 'lower' },
    { key: 'commands', title: 'commands sent', better: 'lower' },
  ],
  run: async (_ctx, options) => {
    if (!onPath('redis-server')) {
      console.error(
        '  pattern-invalidation needs redis-server on PATH (it measures SLOWLOG on a server of its own); skipped',
      );
      return [];
    }
    const server = await RedisServer.start();
    const redis = createClient({ url: server.url, commandTimeout: 60_000 }) as Redis;
    const contenders: Array<{ name: string; kind: Trial['kind']; run(): Promise<unknown> }> = [
      {
        name: 'redscale Cache.invalidatePattern (SCAN + UNLINK)',
        kind: 'redscale',
        run: () => new Cache({ redis, prefix: 'app', bus: false, timeout: 60_000 }).invalidatePattern('session:*'),
      },
      {
        name: 'hand-written delPattern (KEYS + DEL)',
        kind: 'hand-written',
        run: () => seedDelPattern(redis, 'app:c:session:*'),
      },
    ];
    const trials: Trial[] = [];
    try {
      for (const contender of contenders) {
        for (let start = 0; start < options.patternKeys; start += 10_000) {
          const pipeline = redis.pipeline();
          for (let i = start; i < Math.min(start + 10_000, options.patternKeys); i++)
            pipeline.set(`app:c:session:${i}`, 'x'.repeat(100));
          await pipeline.exec();
        }
        for (let i = 0; i < OUTSIDE; i++) await redis.set(`app:c:user:${i}`, '1');
        await redis.config('SET', 'slowlog-log-slower-than', '0');
        await redis.config('SET', 'slowlog-max-len', '100000');
        await redis.slowlog('RESET');
        let ms = 0;
        const commands = await countSentCommands(redis, async () => {
          const started = performance.now();
          await contender.run();
          ms = performance.now() - started;
        });
        const log = (await redis.slowlog('GET', -1)) as Array<[number, number, number, string[]]>;
        await redis.config('SET', 'slowlog-log-slower-than', '10000');
        const longest = Math.max(
          0,
          ...log.filter((entry) => !/^slowlog$/i.test(entry[3][0] ?? '')).map((entry) => entry[2]),
        );
        const left = await redis.dbsize();
        if (left !== OUTSIDE)
          throw new Error(`${contender.name} left ${left} keys; expected the ${OUTSIDE} outside the pattern`);
        trials.push({
          contender: contender.name,
          kind: contender.kind,
          setting: `${options.patternKeys.toLocaleString('en-US')} keys`,
          metrics: { ms: Math.round(ms), longestCommandMs: Math.round(longest / 10) / 100, commands },
        });
        await redis.flushall(); // the scenario's own server
      }
    } finally {
      redis.disconnect();
      await server.dispose();
    }
    return trials;
  },
};
