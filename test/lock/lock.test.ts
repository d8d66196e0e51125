import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_TIMER_MS } from '../../src/common/options.js';
import { InvalidOptionError, Lock, LockLostError, LockTimeoutError } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

const topologies: Array<[Topology, string]> = [
  ['standalone', ''],
  ['cluster', ''],
  ['standalone', 'kp:'],
  ['cluster', 'kp:'],
];

describe.each(topologies)('Lock on %s (client keyPrefix "%s")', (topology, keyPrefix) => {
  const redis = connect(topology, keyPrefix ? { redisOptions: { keyPrefix } } : {});
  const prefix = randomPrefix('lock');
  const lock = new Lock({ redis, prefix, ttl: '2s', wait: '1s' });
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('acquires, extends and releases in one command each, with increasing fencing tokens', async () => {
    // The first command on a Cluster node's fresh connection is counted twice (queued, then sent).
    await (await lock.acquire('a')).release();
    let first!: Awaited<ReturnType<Lock['acquire']>>;
    expect(await countCommands(async () => (first = await lock.acquire('a')))).toEqual({
      count: 1,
      names: ['evalsha'],
    });
    expect(first.held).toBe(true);
    expect(first.remainingMs).toBeGreaterThan(1_900);
    expect((await countCommands(() => first.extend(5_000))).count).toBe(1);
    expect(first.remainingMs).toBeGreaterThan(4_900);
    expect(await redis.pttl(`${prefix}:lock:{a}`)).toBeGreaterThan(4_900);
    let released = false;
    expect((await countCommands(async () => (released = await first.release()))).count).toBe(1);
    expect(released).toBe(true);
    expect(first.held).toBe(false);
    const second = await lock.acquire('a');
    expect(second.fence).toBeGreaterThan(first.fence);
    await second.release();
  });

  it('tryAcquire answers null while the lock is held, and waiting acquire times out naming the resource', async () => {
    const held = await lock.acquire('busy');
    expect(await lock.tryAcquire('busy')).toBeNull();
    const started = performance.now();
    const error = await lock.acquire('busy', { wait: 200 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error).toMatchObject({ code: 'ERR_LOCK_TIMEOUT', resource: 'busy' });
    expect((error as LockTimeoutError).waitedMs).toBeGreaterThanOrEqual(200);
    expect((error as LockTimeoutError).attempts).toBeGreaterThan(1);
    expect((error as Error).message).toMatch(/lock "busy" is held by someone else; gave up after waiting/);
    expect(performance.now() - started).toBeLessThan(1_000);
    await held.release();
  });

  it('a waiting acquire gets the lock as soon as it is released', async () => {
    const held = await lock.acquire('handover');
    const waiting = lock.acquire('handover', { wait: '2s' });
    await sleep(50);
    await held.release();
    const next = await waiting;
    expect(next.fence).toBeGreaterThan(held.fence);
    await next.release();
  });

  it('stops waiting when aborted', async () => {
    const held = await lock.acquire('abort');
    const controller = new AbortController();
    const waiting = lock.acquire('abort', { wait: '5s', signal: controller.signal });
    setTimeout(() => controller.abort(new Error('client went away')), 50);
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_ABORTED', cause: new Error('client went away') });
    await held.release();
  });

  it('a holder that stalls past its ttl loses the lock and cannot harm the next holder', async () => {
    const stalled = await lock.acquire('stall', { ttl: 200 });
    await sleep(300);
    expect(stalled.held).toBe(false);
    expect(stalled.signal.aborted).toBe(true);
    expect(stalled.signal.reason).toBeInstanceOf(LockLostError);
    expect(stalled.signal.reason).toMatchObject({ code: 'ERR_LOCK_LOST', reason: 'expired', resource: 'stall' });
    expect(stalled.held).toBe(false);
    const next = await lock.acquire('stall', { ttl: '5s' });
    expect(next.fence).toBeGreaterThan(stalled.fence);
    // The late release is token-checked: it does not delete the new holder's lock.
    expect(await stalled.release()).toBe(false);
    expect(await redis.get(`${prefix}:lock:{stall}`)).toBe(next.token);
    await expect(stalled.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(await lock.tryAcquire('stall')).toBeNull();
    await next.release();
  });

  it('auto-extension keeps a long withLock exclusive over several ttls', async () => {
    const rival = new Lock({ redis, prefix, wait: 0 });
    let rivalWins = 0;
    let checks = 0;
    const result = await lock.withLock(
      'long',
      async ({ signal, fence }) => {
        for (let i = 0; i < 12; i++) {
          await sleep(120);
          checks++;
          if (await rival.tryAcquire('long')) rivalWins++;
        }
        expect(signal.aborted).toBe(false);
        return fence;
      },
      // Generous: a loaded machine can stall the event loop for a good part of a short ttl.
      { ttl: 450 },
    );
    expect(checks).toBe(12);
    expect(rivalWins).toBe(0);
    expect(result).toBeGreaterThan(0);
    const after = await rival.tryAcquire('long');
    expect(after).not.toBeNull();
    await after?.release();
  });

  it('withLock surfaces a lost lock as an error, even when the work itself succeeded', async () => {
    const outcome = lock.withLock('lost', async () => sleep(300).then(() => 'done'), { ttl: 150, autoExtend: false });
    await expect(outcome).rejects.toBeInstanceOf(LockLostError);
  });

  it('withLock releases and rethrows when the work fails', async () => {
    await expect(
      lock.withLock('fails', () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const next = await lock.tryAcquire('fails');
    expect(next).not.toBeNull();
    await next?.release();
  });

  it('keeps its keys under the client keyPrefix, as Redis sees them', async () => {
    const plain = connect(topology);
    try {
      const held = await lock.acquire('where');
      expect(await plain.get(`${keyPrefix}${prefix}:lock:{where}`)).toBe(held.token);
      expect(await plain.exists(`${keyPrefix}${prefix}:lock:{where}:fence`)).toBe(1);
      expect(await held.release()).toBe(true);
      expect(await plain.exists(`${keyPrefix}${prefix}:lock:{where}`)).toBe(0);
    } finally {
      plain.disconnect();
    }
  });

  it('takes the longest ttl a timer can wait without reporting the lock lost at once', async () => {
    const held = await lock.acquire('long-ttl', { ttl: MAX_TIMER_MS });
    const { signal } = held;
    await sleep(50);
    expect(held.held).toBe(true);
    expect(signal.aborted).toBe(false);
    expect(await redis.pttl(`${prefix}:lock:{long-ttl}`)).toBeGreaterThan(MAX_TIMER_MS - 60_000);
    expect(await held.release()).toBe(true);
  });

  it('locks names with braces on their own slot-safe keys', async () => {
    for (const resource of ['{a}', 'a}', '}{', 'ünï']) {
      const held = await lock.acquire(resource);
      expect(await lock.tryAcquire(resource)).toBeNull();
      expect(await held.release()).toBe(true);
    }
  });
});

describe('Lock options', () => {
  const redis = connect('standalone');
  afterAll(() => redis.disconnect());

  it.each([
    [() => new Lock({ redis, ttl: -1 }), '"ttl" for Lock: received -1'],
    [() => new Lock({ redis, ttl: '5 parsecs' as never }), '"ttl" for Lock: received "5 parsecs"'],
    [() => new Lock({ redis, wait: -5 }), '"wait" for Lock: received -5'],
    [() => new Lock({ redis, retryDelay: { min: '1s', max: '10ms' } }), '"retryDelay" for Lock'],
    [() => new Lock({} as never), '"redis" for Lock: received undefined'],
    // A ttl past what a timer can wait would fire the expiry timer at once (item 19), and 1e300 overflows everything (item 25).
    [() => new Lock({ redis, ttl: MAX_TIMER_MS + 1 }), '"ttl" for Lock: received 2147483648'],
    [() => new Lock({ redis, ttl: '30d' }), '"ttl" for Lock: received "30d"'],
    [() => new Lock({ redis, ttl: 1e300 }), '"ttl" for Lock: received 1e+300'],
    [() => new Lock({ redis, retryDelay: { max: 1e300 } }), '"retryDelay.max" for Lock: received 1e+300'],
  ])('%#: rejects bad options naming the option', (build, expected) => {
    expect(build).toThrow(InvalidOptionError);
    expect(build).toThrow(expected);
  });

  it('rejects an empty resource and bad per-call options', async () => {
    const lock = new Lock({ redis, prefix: randomPrefix('opts') });
    await expect(lock.acquire('')).rejects.toThrow(
      /"resource" for Lock.acquire\(\): received ""; expected a non-empty string/,
    );
    await expect(lock.acquire('r', { ttl: 0 })).rejects.toThrow(/"ttl" for Lock.acquire\(\): received 0/);
    await expect(lock.acquire('r', { wait: -1 })).rejects.toThrow(/"wait"/);
    await expect(lock.acquire('r', { ttl: 1e300 })).rejects.toThrow(/"ttl" for Lock.acquire\(\): received 1e\+300/);
    await expect(lock.tryAcquire('r', { ttl: '25d' })).rejects.toThrow(
      /"ttl" for Lock.tryAcquire\(\): received "25d"; expected .* to 2147483.647s/,
    );
    const held = await lock.acquire('r', { ttl: '1s' });
    await expect(held.extend(1e300)).rejects.toThrow(/"ttl" for LockHandle.extend\(\): received 1e\+300/);
    await expect(held.extend(-5)).rejects.toBeInstanceOf(InvalidOptionError);
    expect(held.held).toBe(true);
    expect(await held.release()).toBe(true);
    await expect(lock.withLock('r', 'not a function' as never)).rejects.toThrow(/"fn" for Lock.withLock\(\)/);
  });
});
