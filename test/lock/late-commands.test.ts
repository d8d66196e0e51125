import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Lock, type RedscaleError, Semaphore } from '../../src/index.js';
import { deletePrefix, randomPrefix, type Topology, unhandledRejections } from '../harness/context.js';
import { waitUntil } from '../harness/index.js';
import { type Proxied, proxied } from './proxied.js';

const rejections = unhandledRejections();

/**
 * Lock calls the caller gave up on (timed out while the link stalled or replies crawled) must have
 * no later effect when Redis runs them: the failure model's first rule. The fault proxy holds or
 * delays the bytes; a direct client looks at what Redis holds.
 */
describe.each<Topology>(['standalone', 'cluster'])('Lock calls that Redis runs late, on %s', (topology) => {
  let link: Proxied;
  const prefix = randomPrefix('late');
  const keysOf = (resource: string) => ({
    lock: `${prefix}:lock:{${resource}}`,
    fence: `${prefix}:lock:{${resource}}:fence`,
  });
  beforeAll(async () => {
    link = await proxied(topology);
  });
  afterEach(() => link.set({ kind: 'pass' }));
  afterAll(async () => {
    await deletePrefix(link.direct, prefix);
    await link.close();
  });

  it('an acquire that timed out on a stalled link is refused by its deadline when Redis runs it, and a retry succeeds at once', async () => {
    const errors: RedscaleError[] = [];
    const lock = new Lock({ redis: link.redis, prefix, timeout: 200, wait: 0, onError: (e) => errors.push(e) });
    const keys = keysOf('stalled');
    // A first round trip teaches the lock this node's clock.
    const warm = await lock.acquire('stalled');
    await warm.release();

    link.set({ kind: 'pause' });
    const started = performance.now();
    const error = await lock.acquire('stalled', { wait: '5s' }).catch((caught: unknown) => caught);
    // One deadline for the call: a stalled Redis costs `timeout`, and is never reported as busy.
    expect(error).toMatchObject({ code: 'ERR_TIMEOUT', context: { resource: 'stalled' } });
    expect(performance.now() - started).toBeLessThan(1_500);
    await sleep(100);
    link.set({ kind: 'pass' });
    // Commands on one connection run in order: once this answers, the late acquire has run.
    await link.redis.exists(keys.lock);

    expect(await link.direct.exists(keys.lock)).toBe(0);
    // Refused, not granted and then released: no fencing token was handed out.
    expect(Number(await link.direct.get(keys.fence))).toBe(warm.fence);
    const retry = await lock.tryAcquire('stalled');
    expect(retry).not.toBeNull();
    expect(retry?.fence).toBeGreaterThan(warm.fence);
    expect(await retry?.release()).toBe(true);
    expect(rejections.list).toEqual([]);
  });

  it('a grant whose reply arrived after the caller gave up is released with its token at once, not after its ttl', async () => {
    const lock = new Lock({ redis: link.redis, prefix, ttl: '20s', timeout: 600, wait: 0 });
    const keys = keysOf('slow-reply');
    const warm = await lock.acquire('slow-reply');
    await warm.release();

    // 400 ms each way: the acquire reaches Redis well before its 600 ms deadline and takes the
    // lock, but its reply comes back after the caller has given up.
    link.set({ kind: 'delay', ms: 400 });
    const started = performance.now();
    const error = await lock.acquire('slow-reply').catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'ERR_TIMEOUT' });
    await waitUntil('the late grant', async () => Number(await link.direct.get(keys.fence)) > warm.fence);
    await waitUntil('the token-checked release', async () => (await link.direct.exists(keys.lock)) === 0);
    expect(performance.now() - started).toBeLessThan(10_000);

    const other = new Lock({ redis: link.direct, prefix, wait: 0 });
    const retry = await other.tryAcquire('slow-reply');
    expect(retry).not.toBeNull();
    await retry?.release();
    await sleep(500); // let the delayed replies drain before the link changes mode
    link.set({ kind: 'pass' });
  });

  it('an extension that timed out is refused when Redis runs it late: it cannot renew a lock its holder counts as lapsing', async () => {
    const lock = new Lock({ redis: link.redis, prefix, ttl: '1s', timeout: 200 });
    const keys = keysOf('extend');
    const handle = await lock.acquire('extend');
    link.set({ kind: 'pause' });
    await expect(handle.extend('30s')).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    await sleep(100);
    link.set({ kind: 'pass' });
    await link.redis.exists(keys.lock);
    expect(await link.direct.pttl(keys.lock)).toBeLessThan(1_000);
    expect(await handle.release()).toBe(true);
  });

  it('a release that timed out still releases when the link resumes', async () => {
    const lock = new Lock({ redis: link.redis, prefix, ttl: '20s', timeout: 200 });
    const keys = keysOf('release');
    const handle = await lock.acquire('release');
    link.set({ kind: 'pause' });
    const started = performance.now();
    await expect(handle.release()).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(performance.now() - started).toBeLessThan(1_000);
    link.set({ kind: 'pass' });
    await link.redis.exists(keys.lock);
    expect(await link.direct.exists(keys.lock)).toBe(0);
  });

  it('an acquire whose reply was lost and that ioredis resent after a reconnection holds the lock, not "busy"', async () => {
    const lock = new Lock({ redis: link.redis, prefix, ttl: '20s', timeout: 2_000, wait: 0 });
    const keys = keysOf('resent');
    const warm = await lock.acquire('resent');
    await warm.release();
    // The acquire runs in Redis, its reply is lost; the link drops and ioredis resends it.
    link.set({ kind: 'drop-replies' });
    const pending = lock.acquire('resent');
    await waitUntil('the acquire to run in Redis', async () => (await link.direct.exists(keys.lock)) === 1);
    link.set({ kind: 'pass' });
    link.resetAll();
    const handle = await pending;
    expect(handle.held).toBe(true);
    expect(handle.fence).toBeGreaterThan(warm.fence);
    expect(await link.direct.get(keys.lock)).toBe(handle.token);
    expect(await handle.release()).toBe(true);
    expect(await link.direct.exists(keys.lock)).toBe(0);
  });

  it('a semaphore acquire resent after a reconnection holds its permits once', async () => {
    const semaphore = new Semaphore({ redis: link.redis, prefix, limit: 1, timeout: 2_000, wait: 0 });
    const holders = `${prefix}:sem:{resent}`;
    link.set({ kind: 'drop-replies' });
    const pending = semaphore.acquire('resent');
    await waitUntil('the acquire to run in Redis', async () => (await link.direct.zcard(holders)) === 1);
    link.set({ kind: 'pass' });
    link.resetAll();
    const handle = await pending;
    expect(handle.held).toBe(true);
    expect(await link.direct.zcard(holders)).toBe(1);
    expect(await handle.release()).toBe(true);
    expect(await link.direct.exists(holders)).toBe(0);
  });

  it('a semaphore acquire that timed out on a stalled link takes no permit and keeps no place in the fair queue', async () => {
    const semaphore = new Semaphore({ redis: link.redis, prefix, limit: 1, fair: true, timeout: 200 });
    const holders = `${prefix}:sem:{permits}`;
    const warm = await semaphore.acquire('permits');
    await warm.release();

    link.set({ kind: 'pause' });
    const error = await semaphore.acquire('permits', { wait: '5s' }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'ERR_TIMEOUT', context: { resource: 'permits' } });
    await sleep(100);
    link.set({ kind: 'pass' });
    await link.redis.exists(holders);

    expect(await link.direct.exists(holders, `${holders}:queue`, `${holders}:places`)).toBe(0);
    expect(Number(await link.direct.get(`${holders}:fence`))).toBe(warm.fence);
    const retry = await semaphore.tryAcquire('permits');
    expect(retry).not.toBeNull();
    expect(await retry?.release()).toBe(true);
  });
});
