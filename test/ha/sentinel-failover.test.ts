import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BufferConsumer,
  Cache,
  createClient,
  fixedWindow,
  Lock,
  type LockHandle,
  RateLimiter,
  RedisHealth,
  RedscaleError,
  Semaphore,
  WriteBuffer,
} from '../../src/index.js';
import { quiet, randomPrefix } from '../harness/context.js';
import { rawCommand } from '../harness/resp.js';
import { RedisSentinelSet } from '../harness/sentinel.js';
import { eventually, LoadLoop, type LoadSummary } from './load.js';

/** Calls that may fail while the primary changes: each fails fast with one of these, never hangs. */
const SWITCH_CODES = ['ERR_REDIS', 'ERR_TIMEOUT'];
/**
 * What a lock user may also see: a lock the old primary granted after the replica was promoted is
 * not on the new primary, so its holder loses it (`withLock` rejects with LockLostError); with
 * `replicas: 1` such a grant is refused instead (LockNotReplicatedError).
 */
const LOCK_CODES: Record<string, string[]> = {
  // A holder whose release went to the old primary leaves the lock on the new one until its ttl.
  lock: [...SWITCH_CODES, 'ERR_LOCK_LOST', 'ERR_LOCK_TIMEOUT'],
  semaphore: [...SWITCH_CODES, 'ERR_LOCK_LOST', 'ERR_LOCK_TIMEOUT'],
  replicatedLock: [...SWITCH_CODES, 'ERR_NOT_REPLICATED', 'ERR_LOCK_TIMEOUT'],
};
const SLOW_TO_RECOVER = new Set(['replicatedLock', 'health']);
/** Generous bound on how long until every primitive succeeds on the new primary (measured: 0–3.3 s). */
const RECOVERY_BOUND_MS = 15_000;
/**
 * The bound for what needs a replica in sync (a `replicas: 1` lock) or a calm server (health's
 * PING): the demoted primary resyncs as a replica only once the sentinels reconfigure it
 * (measured: 14–17 s), and the promoted one answers slowly while it serves that full sync.
 */
const RESYNC_BOUND_MS = 30_000;
/** The hot identity's limit, per one-minute window. */
const HOT_LIMIT = 40;

/**
 * One Sentinel failover (`SENTINEL FAILOVER`) with every primitive under load at once, then
 * assertions per primitive on what its calls returned during the switch and after. One failover
 * keeps the file short; the figures are printed for the README.
 */
describe('every primitive across a Sentinel failover under load', () => {
  let set: RedisSentinelSet;
  let redis: Redis;
  let peer: Redis;
  const prefix = randomPrefix('ha');
  const summaries = new Map<string, LoadSummary>();
  const admitted = { deny: 0, memory: 0 };
  let failoverAt = 0;
  let oldPrimary = 0;
  let newPrimary = 0;
  let cache: Cache;
  let peerCache: Cache;
  let held: LockHandle;
  let heldFence = 0;
  let lock: Lock;
  let replicated: Lock;
  let buffer: WriteBuffer<{ n: number }>;
  let consumer: BufferConsumer | undefined;
  const enqueued = new Map<string, number>();
  const healthStatuses: Array<{ at: number; status: string; role?: string; address?: string }> = [];
  const busDropsBefore = { value: 0 };
  /** Times a holder started work while another holder of the same resource was working. */
  const overlaps = { lock: 0, replicatedLock: 0 };

  beforeAll(async () => {
    set = await RedisSentinelSet.start();
    redis = createClient({ sentinels: set.sentinels, name: set.name, onError: quiet });
    peer = createClient({ sentinels: set.sentinels, name: set.name, onError: quiet });
    const limiter = new RateLimiter({
      redis,
      prefix: `${prefix}:rl`,
      limits: fixedWindow({ limit: 1e9, window: '1m' }),
    });
    const hotDeny = new RateLimiter({
      redis,
      prefix: `${prefix}:deny`,
      limits: fixedWindow({ limit: HOT_LIMIT, window: '1h', anchor: 'first-hit' }),
      onRedisError: 'deny',
    });
    const hotMemory = new RateLimiter({
      redis,
      prefix: `${prefix}:mem`,
      limits: fixedWindow({ limit: HOT_LIMIT, window: '1h', anchor: 'first-hit' }),
    });
    cache = new Cache({ redis, prefix: `${prefix}:c`, l1: { maxEntries: 1_000, ttl: '1m' }, bus: { heartbeat: 500 } });
    peerCache = new Cache({ redis: peer, prefix: `${prefix}:c`, l1: { maxEntries: 1_000, ttl: '1m' } });
    lock = new Lock({ redis, prefix: `${prefix}:l`, ttl: '3s', wait: '2s' });
    replicated = new Lock({ redis, prefix: `${prefix}:l`, ttl: '3s', replicas: 1 });
    const semaphore = new Semaphore({ redis, prefix: `${prefix}:s`, limit: 2, ttl: '3s', wait: '2s' });
    buffer = new WriteBuffer<{ n: number }>({ redis, prefix: `${prefix}:b`, name: 'w', onError: quiet });
    const health = new RedisHealth({ redis, prefix: `${prefix}:h`, timeout: '1s' });
    await Promise.all([cache.whenReady(), peerCache.whenReady()]);

    // State that must survive: a value in this instance's L1, a lock granted once a replica had it.
    await cache.set('l1-key', 'v1');
    await cache.get('l1-key');
    held = await replicated.acquire('held', { autoExtend: true });
    heldFence = held.fence;

    const peerLock = new Lock({ redis: peer, prefix: `${prefix}:l`, ttl: '3s', wait: '2s' });
    const peerReplicated = new Lock({ redis: peer, prefix: `${prefix}:l`, ttl: '3s', wait: '2s', replicas: 1 });
    const working = { lock: 0, replicatedLock: 0 };
    const exclusive = (kind: 'lock' | 'replicatedLock') => async () => {
      if (working[kind]++ > 0) overlaps[kind]++;
      await sleep(2);
      working[kind]--;
    };
    const loops = {
      limiter: new LoadLoop(async () => limiter.consume('load')),
      cache: new LoadLoop(async (n) => cache.getOrSet(`k${n % 16}`, async () => n, { ttl: '1m' })),
      lock: new LoadLoop(async (n) => (n % 2 ? lock : peerLock).withLock('shared', exclusive('lock'))),
      replicatedLock: new LoadLoop(async (n) =>
        (n % 2 ? replicated : peerReplicated).withLock('shared-replicated', exclusive('replicatedLock'), {
          wait: '2s',
        }),
      ),
      semaphore: new LoadLoop(async () => semaphore.withPermit('sem', async () => sleep(2))),
      buffer: new LoadLoop(async (n) => {
        const startedAt = performance.now();
        const id = await buffer.enqueue({ n });
        enqueued.set(id, startedAt);
      }),
      health: new LoadLoop(
        async () => {
          const report = await health.check();
          const node = report.nodes[0];
          healthStatuses.push({
            at: performance.now(),
            status: report.status,
            role: node?.role,
            address: node?.address,
          });
          if (report.status === 'down') throw new RedscaleError('ERR_REDIS', 'health: down');
        },
        { concurrency: 1, pauseMs: 50 },
      ),
    };
    await sleep(500);
    busDropsBefore.value = cache.stats().busDrops;
    oldPrimary = await set.currentPrimaryPort();
    // The hot identity's limiters, counting what they admit (one first-hit window of 1 h: the whole test),
    // paced so the limit runs out around the switch.
    const hot = [
      new LoadLoop(
        async () => {
          if ((await hotDeny.consume('hot')).allowed) admitted.deny++;
        },
        { pauseMs: 20 },
      ),
      new LoadLoop(
        async () => {
          if ((await hotMemory.consume('hot')).allowed) admitted.memory++;
        },
        { pauseMs: 20 },
      ),
    ];
    failoverAt = performance.now();
    newPrimary = await set.failover();
    const promotedAfterMs = Math.round(performance.now() - failoverAt);
    // Keep the load on until every primitive has succeeded for a while after its last failure.
    await eventually(
      'every primitive to succeed on the new primary',
      () =>
        Object.values(loops).every((loop) => {
          const last = loop.records.at(-1);
          const summary = loop.summary(failoverAt);
          return last?.outcome === 'ok' && summary.recoveredAfterMs >= 0 && last.startedAt > failoverAt + 1_000;
        }),
      RESYNC_BOUND_MS + 5_000,
    );
    await sleep(1_000);
    await Promise.all([...Object.values(loops), ...hot].map((loop) => loop.stop()));
    for (const [name, loop] of Object.entries(loops)) summaries.set(name, loop.summary(failoverAt));
    console.info(
      `[sentinel failover ${oldPrimary} -> ${newPrimary}]`,
      JSON.stringify({ promotedAfterMs, ...Object.fromEntries(summaries), hotAdmitted: admitted, overlaps }),
    );
  }, 90_000);

  afterAll(async () => {
    await consumer?.stop();
    await Promise.all([cache?.close(), peerCache?.close(), buffer?.close()]);
    redis?.disconnect();
    peer?.disconnect();
    await set?.stop();
  });

  it('promoted the replica', () => {
    expect(newPrimary).not.toBe(oldPrimary);
    expect(newPrimary).toBe(set.replica.port);
  });

  it('every call during the switch answered or failed fast with ERR_REDIS / ERR_TIMEOUT, and all succeed again within the bound', () => {
    for (const [name, summary] of summaries) {
      const allowed = LOCK_CODES[name] ?? SWITCH_CODES;
      expect(
        summary.failureCodes.filter((code) => !allowed.includes(code)),
        name,
      ).toEqual([]);
      // Each call has its own deadline (1 s timeout, 2 s lock wait): none hangs.
      expect(summary.longestCallMs, name).toBeLessThan(6_000);
      expect(summary.recoveredAfterMs, name).toBeGreaterThanOrEqual(0);
      expect(summary.recoveredAfterMs, name).toBeLessThan(
        SLOW_TO_RECOVER.has(name) ? RESYNC_BOUND_MS : RECOVERY_BOUND_MS,
      );
      expect(summary.calls, name).toBeGreaterThan(5);
    }
  });

  it('the limiter never threw (its onRedisError policy answered), and the hot identity was admitted within the stated bound', () => {
    expect(summaries.get('limiter')?.failures).toBe(0);
    // 'deny': at most the limit, plus hits the old primary counted but had not replicated (≤ limit).
    expect(admitted.deny).toBeGreaterThanOrEqual(HOT_LIMIT);
    expect(admitted.deny).toBeLessThanOrEqual(2 * HOT_LIMIT);
    // 'memory' (the default): also up to the limit again per instance from memory while Redis failed.
    expect(admitted.memory).toBeGreaterThanOrEqual(HOT_LIMIT);
    expect(admitted.memory).toBeLessThanOrEqual(3 * HOT_LIMIT);
  });

  it('a lock granted with replicas: 1 is never lost to the switch and never overlaps another holder', () => {
    expect(summaries.get('replicatedLock')?.failureCodes).not.toContain('ERR_LOCK_LOST');
    expect(overlaps.replicatedLock).toBe(0);
  });

  it('the cache bus saw the drop, flushed L1, resubscribed, and carries invalidations again', async () => {
    expect(cache.stats().busDrops).toBeGreaterThan(busDropsBefore.value);
    await eventually('the bus to deliver again', () => cache.busConnected && peerCache.busConnected);
    const layers: string[] = [];
    cache.on('hit', ({ key, layer }) => {
      if (key === 'l1-key') layers.push(layer);
    });
    // The value this instance had in L1 before the failover is read from Redis, not from L1.
    expect(await cache.get('l1-key')).toBe('v1');
    expect(layers).toEqual(['l2']);
    expect(await cache.get('l1-key')).toBe('v1');
    expect(layers).toEqual(['l2', 'l1']);
    // Another instance's write reaches this instance's L1 over the resubscribed bus.
    await peerCache.set('l1-key', 'v2');
    await eventually('the invalidation to arrive', async () => (await cache.get('l1-key')) === 'v2', 5_000);
  });

  it('a lock granted with replicas: 1 is still held after the failover: kept by auto-extension, exclusive, and its fence stays lowest', async () => {
    expect(held.held).toBe(true);
    expect(held.signal.aborted).toBe(false);
    const key = `${prefix}:l:lock:{held}`;
    expect(await rawCommand(newPrimary, `GET ${key}`, 1_000)).toContain(held.token);
    const other = new Lock({ redis: peer, prefix: `${prefix}:l` });
    expect(await other.tryAcquire('held')).toBeNull();
    expect(await held.release()).toBe(true);
    // The next holder's fence is higher than the one granted on the old primary.
    const next = await other.acquire('held');
    expect(next.fence).toBeGreaterThan(heldFence);
    await next.release();
    // The demoted primary now replicates the new one: a replicated grant works again.
    await set.waitForReplicaLink(oldPrimary);
    const again = await replicated.acquire('held');
    await again.release();
  });

  it('the write buffer kept every item acknowledged before the switch began; the consumer drains on the new primary', async () => {
    const committed = new Set<string>();
    consumer = buffer.consume(
      (items) => {
        for (const item of items) committed.add(item.id);
      },
      { flushInterval: 20, claimIdle: '2s', stopTimeout: '5s' },
    );
    const before = [...enqueued].filter(([, startedAt]) => startedAt < failoverAt).map(([id]) => id);
    expect(before.length).toBeGreaterThan(5);
    await eventually('the consumer to commit every item', async () => (await buffer.backlog()).size === 0, 15_000);
    expect(before.filter((id) => !committed.has(id))).toEqual([]);
    // Items acknowledged by the old primary after the replica was promoted are the only ones that may be lost.
    const lost = [...enqueued.keys()].filter((id) => !committed.has(id));
    console.info(`[sentinel failover] write buffer: ${enqueued.size} enqueued, ${lost.length} lost in the switch`);
    expect(lost.length).toBeLessThan(enqueued.size / 2);
  });

  it('health reported the outage and then up, on the new primary as master', () => {
    const after = healthStatuses.filter((entry) => entry.at > failoverAt);
    const last = after.at(-1);
    expect(last?.status).toBe('up');
    expect(last?.role).toBe('master');
    expect(last?.address).toContain(String(newPrimary));
  });
});

/**
 * The primary crashes (SIGKILL): the sentinels notice after `down-after-milliseconds` (1 s here)
 * and promote the replica. Unlike a commanded failover, calls fail until then: each fails fast
 * with a named error, and all succeed again on the new primary.
 */
describe('every primitive when the Sentinel primary is killed', () => {
  let set: RedisSentinelSet;
  let redis: Redis;
  const prefix = randomPrefix('ha-kill');
  const summaries = new Map<string, LoadSummary>();
  let admitted = 0;
  let killedAt = 0;
  let newPrimary = 0;
  let cache: Cache;
  let buffer: WriteBuffer<{ n: number }>;
  const enqueued = new Map<string, number>();

  beforeAll(async () => {
    set = await RedisSentinelSet.start();
    redis = createClient({ sentinels: set.sentinels, name: set.name, onError: quiet });
    const limiter = new RateLimiter({
      redis,
      prefix: `${prefix}:rl`,
      limits: fixedWindow({ limit: HOT_LIMIT, window: '1h', anchor: 'first-hit' }),
      onRedisError: 'deny',
    });
    cache = new Cache({ redis, prefix: `${prefix}:c`, l1: { maxEntries: 100 }, bus: { heartbeat: 500 } });
    const lock = new Lock({ redis, prefix: `${prefix}:l`, ttl: '3s', wait: '2s' });
    buffer = new WriteBuffer<{ n: number }>({ redis, prefix: `${prefix}:b`, name: 'w', onError: quiet });
    const health = new RedisHealth({ redis, prefix: `${prefix}:h`, timeout: '1s' });
    await cache.whenReady();
    const loops = {
      limiter: new LoadLoop(
        async () => {
          const result = await limiter.consume('hot');
          if (result.allowed) admitted++;
          if (result.reason === 'redis-error') throw result.error;
        },
        { pauseMs: 50 },
      ),
      cache: new LoadLoop(async (n) => cache.getOrSet(`k${n % 16}`, async () => n, { ttl: '1m' })),
      lock: new LoadLoop(async (n) => lock.withLock(`r${n % 4}`, async () => sleep(2))),
      buffer: new LoadLoop(async (n) => {
        const startedAt = performance.now();
        const id = await buffer.enqueue({ n });
        enqueued.set(id, startedAt);
      }),
      health: new LoadLoop(
        async () => {
          if ((await health.check()).status === 'down') throw new RedscaleError('ERR_REDIS', 'health: down');
        },
        { concurrency: 1, pauseMs: 50 },
      ),
    };
    await sleep(1_500);
    const oldPrimary = await set.currentPrimaryPort();
    killedAt = performance.now();
    await set.primary.kill();
    newPrimary = await set.waitForNewPrimary(oldPrimary);
    const promotedAfterMs = Math.round(performance.now() - killedAt);
    await eventually(
      'every primitive to succeed on the new primary',
      () =>
        Object.values(loops).every((loop) => {
          const last = loop.records.at(-1);
          return last?.outcome === 'ok' && last.startedAt > killedAt + promotedAfterMs;
        }),
      RECOVERY_BOUND_MS + 5_000,
    );
    await sleep(1_000);
    await Promise.all(Object.values(loops).map((loop) => loop.stop()));
    for (const [name, loop] of Object.entries(loops)) summaries.set(name, loop.summary(killedAt));
    console.info(
      `[sentinel primary killed ${oldPrimary} -> ${newPrimary}]`,
      JSON.stringify({ promotedAfterMs, ...Object.fromEntries(summaries), hotAdmitted: admitted }),
    );
  }, 90_000);

  afterAll(async () => {
    await Promise.all([cache?.close(), buffer?.close()]);
    redis?.disconnect();
    await set?.stop();
  });

  it('calls failed fast with ERR_REDIS / ERR_TIMEOUT while no primary answered, and all succeed again within the bound', () => {
    expect(newPrimary).toBe(set.replica.port);
    for (const [name, summary] of summaries) {
      const allowed = LOCK_CODES[name] ?? SWITCH_CODES;
      expect(
        summary.failureCodes.filter((code) => !allowed.includes(code)),
        name,
      ).toEqual([]);
      expect(summary.longestCallMs, name).toBeLessThan(6_000);
      expect(summary.recoveredAfterMs, name).toBeGreaterThanOrEqual(0);
      expect(summary.recoveredAfterMs, name).toBeLessThan(RECOVERY_BOUND_MS);
    }
    // A crash is an outage: something failed before the sentinels promoted the replica.
    expect([...summaries.values()].some((summary) => summary.failures > 0)).toBe(true);
  });

  it('the limiter (deny on error) admitted at most 2 × limit', () => {
    expect(admitted).toBeGreaterThanOrEqual(HOT_LIMIT);
    expect(admitted).toBeLessThanOrEqual(2 * HOT_LIMIT);
  });

  it('the write buffer delivers every item acknowledged more than a second before the crash', async () => {
    const committed = new Set<string>();
    const consumer = buffer.consume(
      (items) => {
        for (const item of items) committed.add(item.id);
      },
      { flushInterval: 20, claimIdle: '2s', stopTimeout: '5s' },
    );
    try {
      await eventually('the consumer to commit every item', async () => (await buffer.backlog()).size === 0, 15_000);
    } finally {
      await consumer.stop();
    }
    const settled = [...enqueued].filter(([, startedAt]) => startedAt < killedAt - 1_000).map(([id]) => id);
    expect(settled.length).toBeGreaterThan(5);
    expect(settled.filter((id) => !committed.has(id))).toEqual([]);
    const lost = [...enqueued.keys()].filter((id) => !committed.has(id));
    console.info(`[sentinel primary killed] write buffer: ${enqueued.size} enqueued, ${lost.length} lost`);
  });
});
