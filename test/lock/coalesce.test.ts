import { afterAll, describe, expect, it, vi } from 'vitest';
import type { RedisLike } from '../../src/index.js';
import { createClient, Lock, LockTimeoutError, Semaphore } from '../../src/index.js';
import { coalescedEval } from '../../src/scripts/coalesce.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';
import { RedisServer } from '../harness/index.js';

/** Counts the pipelines `redis` builds while `run` runs. */
async function countPipelines(redis: RedisLike, run: () => Promise<unknown>): Promise<number> {
  const original = redis.pipeline;
  let pipelines = 0;
  redis.pipeline = function (this: RedisLike, ...args: Parameters<RedisLike['pipeline']>) {
    pipelines++;
    return original.apply(this, args);
  } as RedisLike['pipeline'];
  try {
    await run();
  } finally {
    redis.pipeline = original;
  }
  return pipelines;
}

const topologies: Array<[Topology, string]> = [
  ['standalone', ''],
  ['cluster', 'kp:'],
];

/**
 * Lock and semaphore calls issued while others are in flight travel together (one pipeline per
 * node): the same commands, one per acquire and one per release, the same results.
 */
describe.each(topologies)('coalesced lock calls on %s (client keyPrefix "%s")', (topology, keyPrefix) => {
  const redis = connect(topology, keyPrefix ? { redisOptions: { keyPrefix } } : {});
  const prefix = randomPrefix('coalesce');
  const lock = new Lock({ redis, prefix, ttl: '5s', wait: '2s' });
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('acquire+release sent together: one script run (standalone) or one pipeline per node (Cluster)', async () => {
    const names = Array.from({ length: 40 }, (_, i) => `r${i}`);
    // Teach every node both scripts first (their first call is an EVAL, sent alone).
    await Promise.all(names.map(async (name) => (await lock.acquire(name)).release()));
    const fences: number[] = [];
    let log = { count: 0, names: [] as string[] };
    const pipelines = await countPipelines(redis, async () => {
      log = await countCommands(() =>
        Promise.all(
          names.map(async (name) => {
            const handle = await lock.acquire(name);
            fences.push(handle.fence);
            expect(await handle.release()).toBe(true);
          }),
        ),
      );
    });
    expect(new Set(log.names)).toEqual(new Set(['evalsha']));
    if (topology === 'cluster') {
      // Keys of different slots cannot share a script run: each call is its own EVALSHA, piped per node.
      expect(log.count).toBe(2 * names.length);
      expect(pipelines).toBeGreaterThan(0);
    } else {
      // Acquisitions issued together run as script calls of up to 16 (several in flight keep both
      // client and Redis busy), and so do the releases, give or take the first of each, sent
      // alone while nothing else was in flight: at least 80 / 16 commands, far fewer than 80.
      expect(log.count).toBeGreaterThanOrEqual(5);
      expect(log.count).toBeLessThanOrEqual(10);
    }
    expect(fences.every((fence) => Number.isSafeInteger(fence) && fence > 0)).toBe(true);
    for (const name of names) expect(await redis.exists(`${prefix}:lock:{${name}}`)).toBe(0);
  });

  it('keeps mutual exclusion: of many concurrent tries on one resource, one wins', async () => {
    const tries = await Promise.all(Array.from({ length: 20 }, () => lock.tryAcquire('contended')));
    const winners = tries.filter((handle) => handle !== null);
    expect(winners).toHaveLength(1);
    await winners[0]?.release();
  });

  it.each([false, true])(
    'semaphore (fair: %s): never more holders than the limit when all ask at once',
    async (fair) => {
      const semaphore = new Semaphore({ redis, prefix: `${prefix}:${fair}`, limit: 3, ttl: '5s', wait: 0, fair });
      await (await semaphore.acquire('warm')).release();
      let tries: Array<Awaited<ReturnType<Semaphore['tryAcquire']>>> = [];
      const log = await countCommands(async () => {
        tries = await Promise.all(Array.from({ length: 12 }, () => semaphore.tryAcquire('pool')));
      });
      // Standalone: the first alone at most, the others in one run; Cluster: one EVALSHA each.
      if (topology === 'standalone') expect(log.count).toBeLessThanOrEqual(2);
      else expect(log.count).toBe(12);
      const held = tries.filter((handle) => handle !== null);
      expect(held).toHaveLength(3);
      expect(new Set(held.map((handle) => handle?.fence)).size).toBe(3);
      expect((await Promise.all(held.map((handle) => handle?.release()))).every(Boolean)).toBe(true);
    },
  );
});

describe('a run of several lock calls', () => {
  const redis = connect('standalone');
  const prefix = randomPrefix('coalesce-run');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('gives each call its own reply or error: one that fails does not fail the others', async () => {
    const lock = new Lock({ redis, prefix, ttl: '5s', wait: 0 });
    await (await lock.acquire('warm')).release();
    // A lock key of the wrong type makes that call fail inside the run.
    await redis.hset(`${prefix}:lock:{broken}`, 'x', '1');
    const held = await lock.acquire('held');
    const names = ['a', 'b', 'broken', 'c', 'held', 'd'];
    let settled: Array<PromiseSettledResult<Awaited<ReturnType<Lock['acquire']>>>> = [];
    const log = await countCommands(async () => {
      settled = await Promise.allSettled(names.map((name) => lock.acquire(name)));
    });
    // Issued while the reply to the last acquisition was being handled: all six in one run.
    expect(log).toEqual({ count: 1, names: ['evalsha'] });
    const outcome = settled.map((result) => {
      if (result.status === 'fulfilled') return 'held';
      if (result.reason instanceof LockTimeoutError) return 'busy';
      return (result.reason as { code?: string }).code;
    });
    expect(outcome).toEqual(['held', 'held', 'ERR_REDIS', 'held', 'busy', 'held']);
    const handles = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    expect((await Promise.all(handles.map((handle) => handle.release()))).every(Boolean)).toBe(true);
    expect(await held.release()).toBe(true);
  });
});

describe('coalesced calls under fake timers', () => {
  const redis = connect('standalone');
  const prefix = randomPrefix('coalesce-fake');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it("calls queued while others are in flight still go under a test's fake timers", async () => {
    const lock = new Lock({ redis, prefix, ttl: '5s' });
    await (await lock.acquire('warm')).release();
    // Vitest's defaults fake setImmediate, setTimeout and setInterval (nextTick cannot be faked in
    // its forks pool); the coalescer's nextTick was taken when redscale loaded in any case.
    vi.useFakeTimers();
    try {
      const handles = await Promise.all(['a', 'b', 'c', 'd'].map((name) => lock.acquire(name)));
      expect((await Promise.all(handles.map((handle) => handle.release()))).every(Boolean)).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('coalesced calls after a SCRIPT FLUSH', () => {
  it('a pipeline whose scripts the server lost resends each call alone, and each runs once', async () => {
    const server = await RedisServer.start();
    const redis = createClient(server.url);
    try {
      const lock = new Lock({ redis, prefix: 'flush', ttl: '5s' });
      await (await lock.acquire('warm')).release();
      await redis.script('FLUSH');
      const handles = await Promise.all(Array.from({ length: 10 }, (_, i) => lock.acquire(`r${i}`)));
      expect(handles.every((handle) => handle.held)).toBe(true);
      expect((await Promise.all(handles.map((handle) => handle.release()))).every(Boolean)).toBe(true);
      // Straight calls of the helper: replies in the order of the calls.
      const replies = await Promise.all(
        Array.from({ length: 5 }, (_, i) => coalescedEval(redis, 'lockRelease', [`flush:lock:{x${i}}`], ['t'])),
      );
      expect(replies).toEqual([0, 0, 0, 0, 0]);
    } finally {
      redis.disconnect();
      await server.dispose();
    }
  });
});
