import { performance } from 'node:perf_hooks';
import { BentoCache, bentostore } from 'bentocache';
import { redisDriver } from 'bentocache/drivers/redis';
import type { Redis } from 'ioredis';
import { Cache } from '../../src/index.js';
import { countSentCommands } from '../lib/commands.js';
import type { BenchContext, Trial, TrialScenario } from '../lib/types.js';

interface TagContender {
  name: string;
  kind: Trial['kind'];
  /** Writes `count` entries under `tag`, then returns how to invalidate the tag and how to check an entry is gone. */
  prepare(
    ctx: BenchContext,
    prefix: string,
    tag: string,
    count: number,
  ): Promise<{ invalidate(): Promise<unknown>; isGone(key: string): Promise<boolean> }>;
}

/** Runs `write(i)` for 0 ≤ i < count, 1,000 at a time. */
async function fill(count: number, write: (i: number) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < count; start += 1_000) {
    await Promise.all(Array.from({ length: Math.min(1_000, count - start) }, (_, i) => write(start + i)));
  }
}

const CONTENDERS: TagContender[] = [
  {
    name: 'redscale Cache.invalidateTags',
    kind: 'redscale',
    prepare: async (ctx, prefix, tag, count) => {
      const cache = new Cache({ redis: ctx.redis, prefix, bus: false });
      await fill(count, (i) => cache.set(`k${i}`, i, { tags: [tag] }));
      return {
        invalidate: () => cache.invalidateTags([tag]),
        isGone: async (key) => (await cache.get(key)) === undefined,
      };
    },
  },
  {
    name: 'bentocache deleteByTag',
    kind: 'peer',
    prepare: async (ctx, prefix, tag, count) => {
      const bento = new BentoCache({
        default: 'c',
        prefix,
        stores: { c: bentostore().useL2Layer(redisDriver({ connection: ctx.redis as Redis })) },
      });
      await fill(count, (i) => bento.set({ key: `k${i}`, value: i, tags: [tag], ttl: '1h' }));
      return {
        invalidate: () => bento.deleteByTag({ tags: [tag] }),
        isGone: async (key) => (await bento.get({ key })) === undefined,
      };
    },
  },
  {
    name: 'hand-written tag set (SADD, then SMEMBERS + DEL)',
    kind: 'baseline',
    prepare: async (ctx, prefix, tag, count) => {
      const redis = ctx.redis as Redis;
      const tagKey = `${prefix}:tag:${tag}`;
      await fill(count, async (i) => {
        await redis.set(`${prefix}:k${i}`, String(i), 'EX', 3_600);
        await redis.sadd(tagKey, `${prefix}:k${i}`);
      });
      return {
        invalidate: async () => {
          const keys = await redis.smembers(tagKey);
          for (let i = 0; i < keys.length; i += 1_000) await redis.del(...keys.slice(i, i + 1_000));
          await redis.del(tagKey);
        },
        isGone: async (key) => (await redis.exists(`${prefix}:${key}`)) === 0,
      };
    },
  },
];

/** What invalidating one tag costs as the number of entries carrying it grows. */
export const tagInvalidation: TrialScenario = {
  name: 'tag-invalidation',
  description:
    'Invalidate one tag carried by N entries. redscale moves a version (one command, whatever N); a tag index must find and delete every entry. Each run checks an entry under the tag is gone afterwards.',
  columns: [
    { key: 'ms', title: 'invalidate ms', better: 'lower' },
    { key: 'commands', title: 'commands sent', better: 'lower' },
  ],
  run: async (ctx, options) => {
    const trials: Trial[] = [];
    for (const count of options.tagSizes) {
      for (const contender of CONTENDERS) {
        const prefix = `${ctx.prefix}:tags:${contender.kind}:${count}`;
        const prepared = await contender.prepare(ctx, prefix, 'catalog', count);
        let ms = 0;
        const commands = await countSentCommands(ctx.redis, async () => {
          const started = performance.now();
          await prepared.invalidate();
          ms = performance.now() - started;
        });
        if (!(await prepared.isGone(`k${count - 1}`)))
          throw new Error(`${contender.name} left an invalidated entry readable`);
        trials.push({
          contender: contender.name,
          kind: contender.kind,
          setting: `${count.toLocaleString('en-US')} entries`,
          metrics: { ms: Math.round(ms * 100) / 100, commands },
        });
      }
    }
    return trials;
  },
};
