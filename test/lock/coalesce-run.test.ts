import { afterAll, describe, expect, it } from 'vitest';
import { Lock, Semaphore } from '../../src/index.js';
import { coalescedEval } from '../../src/scripts/coalesce.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';

/** Calls of one batched script run are judged one by one: deadlines, key counts, order. */
describe('calls sharing one script run', () => {
  const redis = connect('standalone');
  const prefix = randomPrefix('coalesce-run2');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('lock acquisitions: one past its deadline changes nothing, the others are granted with rising fences', async () => {
    const lock = new Lock({ redis, prefix, ttl: '5s' });
    await (await lock.acquire('warm')).release();
    const key = (name: string) => `${prefix}:lock:{${name}}`;
    const acquire = (name: string, token: string, deadline: number) =>
      coalescedEval(redis, 'lockAcquire', [key(name), `${key(name)}:fence`], [token, 5000, deadline]);
    let replies: unknown[] = [];
    const log = await countCommands(async () => {
      replies = await Promise.all([
        acquire('first', 't0', 0), // alone: nothing in flight
        acquire('late', 't1', 1), // a deadline long past
        acquire('same', 't2', 0),
        acquire('same', 't3', 0), // the same resource, another token: refused
        acquire('same2', 't4', 0),
      ]);
    });
    expect(log.count).toBeLessThanOrEqual(2); // one run (two when the first goes alone)
    const [first, late, same, sameAgain, same2] = replies as number[][];
    expect(first?.[0]).toBe(1);
    expect(late?.[0]).toBe(-1);
    expect(same?.[0]).toBe(1);
    expect(sameAgain?.[0]).toBe(0);
    expect(sameAgain?.[2]).toBeGreaterThan(4000);
    expect(same2?.[0]).toBe(1);
    expect(await redis.exists(key('late'), `${key('late')}:fence`)).toBe(0);
    expect(await redis.get(key('same'))).toBe('t2');
    // Fences of one run (one TIME) still rise per resource: the same fence key twice.
    const fences = await Promise.all([
      coalescedEval(redis, 'lockRelease', [key('same')], ['t2']),
      coalescedEval(redis, 'lockAcquire', [key('again'), `${key('same')}:fence`], ['t5', 5000, 0]),
      coalescedEval(redis, 'lockAcquire', [key('again2'), `${key('same')}:fence`], ['t6', 5000, 0]),
    ]);
    const [, a, b] = fences as number[][];
    expect((b?.[2] as number) > (a?.[2] as number)).toBe(true);
    expect((a?.[2] as number) > (same?.[2] as number)).toBe(true);
  });

  it('semaphore releases of fair (3 keys) and unfair (1 key) semaphores in one run each give back their own', async () => {
    const fair = new Semaphore({ redis, prefix: `${prefix}:f`, limit: 2, fair: true, ttl: '5s' });
    const unfair = new Semaphore({ redis, prefix: `${prefix}:u`, limit: 2, ttl: '5s' });
    await (await fair.acquire('w')).release();
    await (await unfair.acquire('w')).release();
    const handles = await Promise.all([
      fair.acquire('p', { permits: 2 }),
      unfair.acquire('p'),
      unfair.acquire('p'),
      fair.acquire('q'),
    ]);
    const log = await countCommands(async () => {
      expect(await Promise.all(handles.map((handle) => handle.release()))).toEqual([true, true, true, true]);
    });
    expect(log.count).toBeLessThanOrEqual(2);
    expect(await redis.exists(`${prefix}:f:sem:{p}`, `${prefix}:u:sem:{p}`, `${prefix}:f:sem:{q}`)).toBe(0);
  });
});
