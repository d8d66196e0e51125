import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Lock, LockLostError } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

/** Blocks the event loop, as a long GC pause or a synchronous CPU-bound step does. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

/**
 * After a synchronous stall past the ttl no timer has run yet, but user code can already look:
 * `held`, `signal.aborted`, `signal.reason`, `signal.throwIfAborted()` and `fence` must all say
 * the lock is lost, whichever is read first.
 */
describe.each<Topology>(['standalone', 'cluster'])('a lock holder stalled past its ttl, on %s', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('stall');
  const lock = new Lock({ redis, prefix, ttl: 300 });
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('sees signal.aborted as soon as it wakes, in agreement with held (auto-extended, signal read first)', async () => {
    const handle = await lock.acquire('read-signal-first', { autoExtend: true });
    const { signal } = handle;
    expect([signal.aborted, handle.held]).toEqual([false, true]);
    stall(600);
    const aborted = signal.aborted;
    const held = handle.held;
    expect(aborted).toBe(true);
    expect(held).toBe(false);
    expect(signal.reason).toBeInstanceOf(LockLostError);
    expect(signal.reason).toMatchObject({ code: 'ERR_LOCK_LOST', reason: 'expired', resource: 'read-signal-first' });
    await handle.release();
  });

  it('agrees whichever is read first: held, then the signal and throwIfAborted (no auto-extension)', async () => {
    const handle = await lock.acquire('read-held-first');
    const { signal } = handle;
    stall(600);
    expect(handle.held).toBe(false);
    expect(signal.aborted).toBe(true);
    expect(() => signal.throwIfAborted()).toThrow(LockLostError);
    await handle.release();
  });

  it('aborts a signal captured by withLock code, and reading fence counts as looking', async () => {
    let seen: { aborted: boolean; reason: unknown } | undefined;
    let abortEvents = 0;
    let eventsAfterFence = 0;
    const outcome = lock
      .withLock('in-withlock', ({ signal, handle }) => {
        signal.addEventListener('abort', () => abortEvents++);
        stall(600);
        void handle.fence;
        eventsAfterFence = abortEvents;
        // Read the flag the way code following the README does, before writing anything.
        seen = { aborted: signal.aborted, reason: signal.reason };
        return 'wrote stale data';
      })
      .catch((error: unknown) => error);
    await expect(outcome).resolves.toBeInstanceOf(LockLostError);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBeInstanceOf(LockLostError);
    expect(eventsAfterFence).toBe(1);
    expect(abortEvents).toBe(1);
  });

  it('a holder that did not stall keeps a consistent view: not aborted while held', async () => {
    const handle = await lock.acquire('no-stall', { autoExtend: true });
    for (let i = 0; i < 6; i++) {
      await sleep(100);
      expect(handle.signal.aborted).toBe(!handle.held);
      expect(handle.held).toBe(true);
    }
    expect(await handle.release()).toBe(true);
    // Releasing is not losing: the signal never aborts on release.
    expect(handle.held).toBe(false);
    expect(handle.signal.aborted).toBe(false);
  });
});
