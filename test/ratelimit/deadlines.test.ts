import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { pendingDeadlines } from '../../src/common/deadline.js';
import { fixedWindow, RateLimiter, type RedisLike } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix, unhandledRejections } from '../harness/context.js';
import { ClusterProxies, FaultProxy } from '../harness/fault-proxy.js';

const rejections = unhandledRejections();
const TIMEOUT = 250;
/** Far longer than any deadline here: a check still pending then is hung. */
const hung = () => sleep(2_000).then(() => 'hung' as const);

/**
 * Limiter checks keep their deadline themselves (a batched check is its own entry on the shared
 * sweeper; an unbatched one is wrapped in `untilDeadline`). Every interleaving of a deadline with a
 * reply — stalled, slow, queued behind another call, the first calls of a limiter that has not
 * learned the server's clock, a test suite's fake timers — must end each check exactly once, with
 * one reported error per failed check, and no effect of a call given up on.
 */
describe('deadlines of limiter checks', () => {
  let proxy: FaultProxy;
  let plain: Redis;
  const direct = connect('standalone');
  const prefixes: string[] = [];
  beforeAll(async () => {
    proxy = await FaultProxy.start(inject('redisUrl'));
    plain = new Redis(proxy.url);
    plain.on('error', () => {});
    await plain.ping();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
    proxy.pass();
  });
  afterAll(async () => {
    plain.disconnect();
    await proxy.close();
    for (const prefix of prefixes) await deletePrefix(direct, prefix);
    direct.disconnect();
  });

  function limiters(batch: boolean, timeout = TIMEOUT) {
    const prefix = randomPrefix('deadlines');
    prefixes.push(prefix);
    const errors: unknown[] = [];
    const common = { prefix, limits: fixedWindow({ limit: 1000, window: '1h' }), localDenyCache: false as const };
    return {
      errors,
      through: new RateLimiter({
        ...common,
        redis: plain as RedisLike,
        timeout,
        onRedisError: 'deny',
        circuitBreaker: false,
        batch,
        onError: (error) => errors.push(error),
      }),
      truth: new RateLimiter({ ...common, redis: direct, timeout: '5s' }),
    };
  }

  const used = async (truth: RateLimiter, id: string) => (await truth.peek(id)).limits[0]?.used;

  describe.each([true, false])('batch: %s', (batch) => {
    it('concurrent checks on a stalled link (sent or queued) each fail once; their late replies change nothing', async () => {
      const { through, truth, errors } = limiters(batch);
      expect(await through.consume('warm')).toMatchObject({ source: 'redis' });
      proxy.set({ kind: 'pause' });
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => through.consume(`u${i % 5}`)));
      expect(results.every((result) => result.source === 'policy' && result.error?.code === 'ERR_TIMEOUT')).toBe(true);
      expect(errors).toHaveLength(50);
      expect(through.stats().redisErrors).toBe(50);
      expect(pendingDeadlines()).toBe(0);
      await sleep(30);
      proxy.pass();
      await plain.ping();
      await sleep(30);
      expect(errors).toHaveLength(50);
      for (let i = 0; i < 5; i++) expect(await used(truth, `u${i}`)).toBe(0);
      expect(await through.consume('u0')).toMatchObject({ source: 'redis', remaining: 999 });
      expect(pendingDeadlines()).toBe(0);
      expect(rejections.list).toEqual([]);
    });

    it('checks answered after their deadline fail once and count nothing', async () => {
      const { through, truth, errors } = limiters(batch);
      expect(await through.consume('warm')).toMatchObject({ source: 'redis' });
      proxy.set({ kind: 'delay', ms: TIMEOUT + 80 });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => through.consume(`s${i % 2}`)));
      expect(results.every((result) => result.error?.code === 'ERR_TIMEOUT')).toBe(true);
      await sleep(TIMEOUT + 200);
      proxy.pass();
      expect(errors).toHaveLength(20);
      expect(await used(truth, 's0')).toBe(0);
      expect(pendingDeadlines()).toBe(0);
    });

    it('the concurrent first checks of a limiter whose host clock is a minute behind all count once', async () => {
      vi.spyOn(Date, 'now').mockImplementation(() => performance.timeOrigin + performance.now() - 60_000);
      // Two round trips (the late run, then the retry) within the deadline, on a busy machine.
      const { through, truth, errors } = limiters(batch, 2_000);
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => through.consume(`c${i % 3}`)));
      expect(errors).toEqual([]);
      expect(results.every((result) => result.source === 'redis')).toBe(true);
      expect(await used(truth, 'c0')).toBe(10);
      expect(pendingDeadlines()).toBe(0);
    });

    // Until its first reply a limiter reckons deadlines on the host's clock; a clock ahead of the
    // server's lets a check given up on count when it runs late (nothing was learned yet). Its
    // reply, late as it is, carries the server's time: dropping it with the timed-out check kept
    // the limiter on the skewed clock, so every later check given up on counted too.
    it('a late reply still teaches the server clock, so the next check given up on does not count', async () => {
      vi.spyOn(Date, 'now').mockImplementation(() => performance.timeOrigin + performance.now() + 60_000);
      const { through, truth } = limiters(batch);
      for (const round of [1, 2]) {
        proxy.set({ kind: 'pause' });
        expect(await through.consume('k')).toMatchObject({ source: 'policy', error: { code: 'ERR_TIMEOUT' } });
        await sleep(30);
        proxy.pass();
        await plain.ping();
        await sleep(20);
        // The first ran on the skewed clock and counted; the second must not.
        expect([round, await used(truth, 'k')]).toEqual([round, 1]);
      }
    });
  });

  // Deadlines are reckoned on perf_hooks' clock, which fake timers leave alone, and Redis answers in
  // real time: the sweeper must tick in real time too. An interval created on a fake clock never
  // fired — a stalled Redis hung the check — and, once real timers were back, it still stood as
  // "the sweeper", so no deadline in the process fired again.
  it('a check on a stalled link times out under fake timers', async () => {
    const { through } = limiters(true);
    expect(await through.consume('warm')).toMatchObject({ source: 'redis' });
    await sleep(20); // nothing is filed: the sweeper stops
    vi.useFakeTimers();
    proxy.set({ kind: 'pause' });
    const result = await Promise.race([through.consume('f'), hung()]);
    expect(result).toMatchObject({ source: 'policy', error: { code: 'ERR_TIMEOUT' } });
  });

  it('checks still time out once fake timers are gone', async () => {
    const { through } = limiters(true);
    await sleep(20);
    vi.useFakeTimers();
    expect(await through.consume('x')).toMatchObject({ source: 'redis' });
    vi.useRealTimers();
    proxy.set({ kind: 'pause' });
    const result = await Promise.race([through.consume('y'), hung()]);
    expect(result).toMatchObject({ source: 'policy', error: { code: 'ERR_TIMEOUT' } });
  });

  // Under fake timers `setImmediate` never runs, so checks queued behind a call in flight go when
  // its reply comes: after a stall, long past their deadlines. They have failed already; sending
  // them costs Redis a script call for nothing, and where the deadline was reckoned on a skewed
  // host clock (nothing learned yet) it could still count a check given up on.
  it('checks that timed out while queued are never sent', async () => {
    const { through, truth, errors } = limiters(true);
    expect(await through.consume('warm')).toMatchObject({ source: 'redis' });
    vi.useFakeTimers({ toFake: ['setImmediate'] });
    proxy.set({ kind: 'pause' });
    const results = await Promise.all(['a', 'b', 'c'].map((id) => through.consume(id)));
    expect(results.every((result) => result.error?.code === 'ERR_TIMEOUT')).toBe(true);
    const log = await countCommands(async () => {
      proxy.pass();
      await plain.ping();
      await sleep(30);
    });
    expect(log.names.filter((name) => name.startsWith('eval'))).toEqual([]);
    expect(errors).toHaveLength(3);
    for (const id of ['a', 'b', 'c']) expect(await used(truth, id)).toBe(0);
  });
});

// On a Cluster concurrent checks go as one pipeline per node, and a check may be sent again alone
// (NOSCRIPT, MOVED): each still ends once, at its deadline, and a late reply changes nothing.
describe('deadlines of batched limiter checks on a Cluster', () => {
  let proxies: ClusterProxies;
  let plain: Cluster;
  const direct = connect('cluster');
  const prefix = randomPrefix('deadlines-cluster');
  beforeAll(async () => {
    proxies = await ClusterProxies.start(inject('clusterNodes'));
    plain = new Cluster(proxies.nodes, { natMap: proxies.natMap });
    plain.on('error', () => {});
    await plain.ping();
  });
  afterAll(async () => {
    plain.disconnect();
    await proxies.close();
    await deletePrefix(direct, prefix);
    direct.disconnect();
  });
  const setAll = (mode: Parameters<FaultProxy['set']>[0]) => {
    for (const proxy of proxies.all) proxy.set(mode);
  };

  it.each([
    ['stalled', { kind: 'pause' } as const],
    ['slow', { kind: 'delay', ms: TIMEOUT + 80 } as const],
  ])('checks on %s links each fail once and count nothing', async (name, mode) => {
    const errors: unknown[] = [];
    const common = { prefix: `${prefix}:${name}`, limits: fixedWindow({ limit: 1000, window: '1h' }) };
    const through = new RateLimiter({
      ...common,
      redis: plain as RedisLike,
      timeout: TIMEOUT,
      onRedisError: 'deny',
      circuitBreaker: false,
      localDenyCache: false,
      onError: (error) => errors.push(error),
    });
    const truth = new RateLimiter({ ...common, redis: direct, timeout: '5s' });
    const ids = Array.from({ length: 12 }, (_, i) => `n${i}`);
    // Teaches every node the script and the limiter every node's clock.
    await Promise.all(ids.map((id) => through.peek(id)));
    setAll(mode);
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => through.consume(ids[i % 12] as string)));
    expect(results.every((result) => result.source === 'policy' && result.error?.code === 'ERR_TIMEOUT')).toBe(true);
    expect(errors).toHaveLength(60);
    expect(through.stats().redisErrors).toBe(60);
    expect(pendingDeadlines()).toBe(0);
    await sleep(TIMEOUT + 200);
    setAll({ kind: 'pass' });
    await plain.ping();
    await sleep(30);
    expect(errors).toHaveLength(60);
    for (const id of ids) expect((await truth.peek(id)).limits[0]?.used).toBe(0);
    expect(rejections.list).toEqual([]);
  });
});
