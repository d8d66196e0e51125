import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { slotOf } from '../../src/client/cluster.js';
import { InvalidOptionError, keySlot, Lock, LockLostError, resourceHashTag } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

const topologies: Array<[Topology, string]> = [
  ['standalone', ''],
  ['cluster', ''],
  ['cluster', 'kp:'],
];

describe.each(topologies)('Lock.acquireAll on %s (client keyPrefix "%s")', (topology, keyPrefix) => {
  const redis = connect(topology, keyPrefix ? { redisOptions: { keyPrefix } } : {});
  const prefix = randomPrefix('multi');
  const lock = new Lock({ redis, prefix, ttl: '2s', wait: '1s' });
  const slot = (resource: string) => slotOf(redis, `${prefix}:lock:{${resource}}`);
  /** Three plain resources in three different slots, by ascending slot. */
  const spread = (label: string) => {
    const found: string[] = [];
    for (let i = 0; found.length < 3; i++) {
      const candidate = `${label}-${i}`;
      if (!found.some((resource) => slot(resource) === slot(candidate))) found.push(candidate);
    }
    return found.sort((a, b) => slot(a) - slot(b));
  };
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('takes resources that share a hash tag in one script, with a fencing token each', async () => {
    const resources = ['{order:7}:items', '{order:7}:payment', '{order:7}:invoice'];
    await (await lock.acquireAll(resources)).release();
    let handle!: Awaited<ReturnType<Lock['acquireAll']>>;
    expect(await countCommands(async () => (handle = await lock.acquireAll(resources)))).toEqual({
      count: 1,
      names: ['evalsha'],
    });
    expect([...handle.fences.keys()].sort()).toEqual([...resources].sort());
    for (const resource of resources) {
      expect(await lock.tryAcquire(resource)).toBeNull();
      // The key keeps the resource's hash tag, so it lives in the tag's slot.
      const key = `${prefix}:lock:{order:7}${resource.replace(/\{/g, '%7B').replace(/\}/g, '%7D')}}`;
      expect(await redis.get(key)).toBe(handle.token);
      if (topology === 'cluster') expect(slotOf(redis, key)).toBe(keySlot(`${keyPrefix}{order:7}`));
    }
    expect(resourceHashTag(resources[0] as string)).toBe('order:7');
    expect((await countCommands(() => handle.extend())).count).toBe(1);
    expect((await countCommands(async () => expect(await handle.release()).toBe(true))).count).toBe(1);
    const again = await lock.acquireAll(resources);
    for (const resource of resources) {
      expect(again.fences.get(resource)).toBeGreaterThan(handle.fences.get(resource) as number);
    }
    await again.release();
  });

  it('takes resources in different slots one slot at a time, in ascending slot order (one script on standalone)', async () => {
    const resources = spread('order');
    await (await lock.acquireAll(resources)).release();
    const shuffled = [resources[2], resources[0], resources[1]] as string[];
    let handle!: Awaited<ReturnType<Lock['acquireAll']>>;
    const log = await countCommands(async () => (handle = await lock.acquireAll(shuffled)));
    expect(log.count).toBe(topology === 'cluster' ? 3 : 1);
    if (topology === 'cluster') expect(handle.resources).toEqual(resources);
    expect(await handle.release()).toBe(true);
  });

  it('is all or nothing: when one resource is held, the others are free again before the caller waits', async () => {
    const resources = spread('partial');
    // Hold the one acquired last, so on a Cluster the others were taken first and must be rolled back.
    const last = resources[2] as string;
    const holder = await lock.acquire(last);
    expect(await lock.tryAcquireAll(resources)).toBeNull();
    for (const resource of resources.slice(0, 2)) {
      const free = await lock.tryAcquire(resource);
      expect(free).not.toBeNull();
      await free?.release();
    }
    // A waiting caller gets them all once the holder lets go.
    const waiting = lock.acquireAll(resources, { wait: '2s' });
    await sleep(50);
    await holder.release();
    const all = await waiting;
    expect(all.resources).toHaveLength(3);
    expect(await all.release()).toBe(true);
  });

  it('is extended, released and lost as a whole when one of its locks goes', async () => {
    const resources = spread('whole');
    const handle = await lock.acquireAll(resources, { ttl: '5s' });
    await handle.extend('10s');
    for (const resource of resources) expect(await redis.pttl(`${prefix}:lock:{${resource}}`)).toBeGreaterThan(9_000);
    // What an eviction or a lost failover does to one of them.
    await redis.del(`${prefix}:lock:{${resources[1]}}`);
    await expect(handle.extend()).rejects.toMatchObject({ code: 'ERR_LOCK_LOST', reason: 'not-held' });
    expect(handle.signal.aborted).toBe(true);
    expect(handle.held).toBe(false);
    expect(await handle.release()).toBe(false);
    for (const resource of resources) expect(await redis.exists(`${prefix}:lock:{${resource}}`)).toBe(0);
  });

  it('withLocks keeps overlapping sets exclusive on what they share, across slots', async () => {
    const [a, b, c] = spread('overlap') as [string, string, string];
    const inside = new Map<string, number>();
    let overlaps = 0;
    let runs = 0;
    const worker = (resources: string[]) =>
      (async () => {
        for (let i = 0; i < 8; i++) {
          await lock.withLocks(
            resources,
            async ({ fences }) => {
              expect(fences.size).toBe(resources.length);
              for (const resource of resources) {
                const count = (inside.get(resource) ?? 0) + 1;
                inside.set(resource, count);
                if (count > 1) overlaps++;
              }
              await sleep(2);
              for (const resource of resources) inside.set(resource, (inside.get(resource) ?? 1) - 1);
              runs++;
            },
            { wait: '10s' },
          );
        }
      })();
    await Promise.all([worker([a, b]), worker([b, c]), worker([c, a]), worker([a, b, c])]);
    expect(runs).toBe(32);
    expect(overlaps).toBe(0);
  });

  it('withLocks rejects with a LockLostError when the set was lost while fn ran', async () => {
    const resources = spread('lost');
    await expect(lock.withLocks(resources, () => sleep(300), { ttl: 150, autoExtend: false })).rejects.toBeInstanceOf(
      LockLostError,
    );
  });

  it('locks a repeated resource once, and names bad input', async () => {
    const handle = await lock.acquireAll(['dup', 'dup', 'other']);
    expect([...handle.resources].sort()).toEqual(['dup', 'other']);
    await handle.release();
    await expect(lock.acquireAll([])).rejects.toThrow(InvalidOptionError);
    await expect(lock.acquireAll('a' as never)).rejects.toThrow(/"resources" for Lock.acquireAll\(\)/);
    await expect(lock.tryAcquireAll(['a', ''])).rejects.toThrow(/"resources\[1\]" for Lock.tryAcquireAll\(\)/);
    await expect(lock.acquireAll(Array.from({ length: 1_001 }, (_, i) => `r${i}`))).rejects.toThrow(
      /expected an array of 1 to 1000/,
    );
    await expect(lock.withLocks(['a'], null as never)).rejects.toThrow(/"fn" for Lock.withLocks\(\)/);
  });
});
