import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { nodeOf } from '../../src/client/cluster.js';
import {
  createClient,
  type RedisLike,
  type RedscaleError,
  WriteBuffer,
  type WriteBufferOptions,
} from '../../src/index.js';
import { deletePrefix, quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { ClusterProxies, FaultProxy, RedisServer, waitUntil } from '../harness/index.js';
import { FAST, recordingSink } from './support.js';

const rejections = unhandledRejections();

/**
 * What can interleave with a write buffer's state, each forced with a fault proxy or a server of
 * the test's own: a command that runs after its caller gave up (enqueue, read), an
 * acknowledgement that never arrives, a consumer that stalls past claimIdle or dies holding
 * items, a Redis that loses its data or goes away, a full dead-letter stream.
 */
describe('WriteBuffer under faults', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    expect(rejections.list).toEqual([]);
  });

  /** A client straight to the shared Redis, and one through a fault proxy in front of it. */
  async function proxied() {
    const proxy = await FaultProxy.start(inject('redisUrl'));
    const direct = createClient({ url: inject('redisUrl'), onError: quiet });
    const viaProxy = createClient({ url: proxy.url, onError: quiet, commandTimeout: '5s' });
    const prefix = randomPrefix('buffer-fault');
    cleanups.push(async () => {
      await deletePrefix(direct, prefix);
      viaProxy.disconnect();
      direct.disconnect();
      await proxy.close();
    });
    return { proxy, direct, viaProxy, prefix };
  }

  function make<T>(redis: RedisLike, prefix: string, options: Partial<WriteBufferOptions<T>> = {}) {
    const errors: RedscaleError[] = [];
    const buffer = new WriteBuffer<T>({
      redis,
      prefix,
      name: 'writes',
      onError: (error) => errors.push(error),
      ...options,
    });
    cleanups.push(() => buffer.close());
    return { buffer, errors };
  }

  it('an enqueue that timed out has no later effect: the script refuses to add once its deadline passed', async () => {
    const { proxy, direct, viaProxy, prefix } = await proxied();
    const { buffer } = make<number>(viaProxy, prefix, { timeout: '200ms', circuitBreaker: false });
    const reader = make<number>(direct, prefix).buffer;
    await buffer.enqueue(0); // learns the server clock
    proxy.set({ kind: 'pause' });
    const error = (await buffer.enqueue(1, { id: 'late-1' }).catch((e: unknown) => e)) as RedscaleError;
    expect(error.code).toBe('ERR_TIMEOUT');
    expect(error.context.ids).toEqual(['late-1']);
    await sleep(300);
    proxy.pass(); // the held EVALSHA reaches Redis now, past its deadline
    await buffer.enqueue(2);
    expect((await reader.backlog()).size).toBe(2);
    const ids = (await direct.xrange(buffer.keys[0]!.stream, '-', '+')).map(([, fields]) => fields[1]);
    expect(ids).not.toContain('late-1');
  });

  it('a read that ran after its consumer gave up leaves nothing pending: items still arrive at once, on attempt 1', async () => {
    const { proxy, direct, viaProxy, prefix } = await proxied();
    const { buffer } = make<number>(viaProxy, prefix, { timeout: '200ms' });
    const producer = make<number>(direct, prefix).buffer;
    const sink = recordingSink<number>();
    await producer.enqueue(-1);
    buffer.consume(sink.flush, { ...FAST, claimIdle: '30s' });
    await waitUntil('the consumer running', async () => sink.committed.length === 1);
    proxy.set({ kind: 'pause' });
    await sleep(100);
    await producer.enqueueMany([1, 2, 3, 4, 5]); // the paused reads will find these when they run, late
    await sleep(500);
    proxy.pass();
    await waitUntil('all five delivered', async () => sink.committed.length === 6, 5_000);
    expect(sink.committed.slice(1).map((item) => item.attempt)).toEqual([1, 1, 1, 1, 1]);
    expect(await producer.backlog()).toMatchObject({ size: 0, pending: 0 });
  });

  it('a lost acknowledgement is retried, not redelivered: each item is flushed once', async () => {
    const { proxy, direct, viaProxy, prefix } = await proxied();
    const { buffer, errors } = make<number>(viaProxy, prefix, { timeout: '200ms' });
    const producer = make<number>(direct, prefix).buffer;
    let flushes = 0;
    const consumer = buffer.consume(
      async () => {
        flushes++;
        // The sink committed; the acknowledgement that follows goes into a half-open link.
        if (flushes === 1) proxy.set({ kind: 'blackhole' });
      },
      { ...FAST, claimIdle: '30s' },
    );
    await producer.enqueueMany([1, 2, 3]);
    await waitUntil('an ack failure reported', async () => errors.some((error) => error.code === 'ERR_TIMEOUT'));
    expect((await producer.backlog()).pending).toBe(3);
    // Redis unreachable long enough that ioredis gives up on its queue (maxRetriesPerRequest):
    // the acknowledgement it held is dropped, not resent. Only the consumer's own retry is left.
    proxy.refuse(true);
    proxy.resetAll();
    await sleep(1_500);
    expect((await producer.backlog()).pending).toBe(3);
    proxy.refuse(false);
    proxy.pass();
    await waitUntil('acknowledged', async () => (await producer.backlog()).size === 0, 5_000);
    await consumer.stop();
    expect(flushes).toBe(1);
    expect(consumer.stats()).toMatchObject({ delivered: 3, committed: 3 });
  });

  it('a consumer stalled past claimIdle loses its items to another, and cannot take them back when it resumes', async () => {
    const { proxy, direct, viaProxy, prefix } = await proxied();
    const stalled = make<number>(viaProxy, prefix, { timeout: '200ms' }).buffer;
    const healthy = make<number>(direct, prefix).buffer;
    const other = recordingSink<number>({ delayMs: 3_000 });
    let stalledFlushes = 0;
    await healthy.enqueueMany([1, 2, 3, 4, 5]);
    const first = stalled.consume(
      async (items) => {
        stalledFlushes++;
        proxy.set({ kind: 'blackhole' }); // cut off: its heartbeat cannot reach Redis
        await sleep(2_000);
        return { failed: items.map((item) => ({ id: item.id, error: 'sink timed out' })) };
      },
      { ...FAST, claimIdle: '600ms', batchSize: 5 },
    );
    await waitUntil('the stalled flush started', async () => stalledFlushes === 1);
    const second = healthy.consume(other.flush, { ...FAST, claimIdle: '600ms' });
    await waitUntil('the items taken over', async () => other.batches.length === 1, 5_000);
    expect(other.attempts.map((item) => item.attempt)).toEqual([2, 2, 2, 2, 2]);
    // The stalled consumer comes back while the other is still flushing, and wants to retry
    // what it failed: the items are no longer its own, so it leaves them alone.
    await waitUntil('the stalled flush failed', async () => first.stats().failed === 5);
    proxy.resetAll();
    proxy.pass();
    await waitUntil('the other committed', async () => other.committed.length === 5, 10_000);
    await Promise.all([first.stop(), second.stop()]);
    expect(stalledFlushes).toBe(1);
    expect(second.stats().claimed).toBe(5);
    expect(await healthy.backlog()).toMatchObject({ size: 0, pending: 0, deadLetters: 0 });
  });

  it("takes over a dead consumer's items after claimIdle, and dead-letters one whose deliveries ran out", async () => {
    const { direct, prefix } = await proxied();
    const { buffer } = make<number>(direct, prefix);
    await buffer.enqueueMany([1, 2], { ids: ['survivor', 'poison'] });
    const stream = buffer.keys[0]!.stream;
    // A consumer that read both and died; the poison pill had already killed four consumers.
    const read = (await (direct as Redis).xreadgroup(
      'GROUP',
      'redscale',
      'ghost',
      'COUNT',
      2,
      'STREAMS',
      stream,
      '>',
    )) as [string, [string, string[]][]][];
    const poison = read[0]![1][1]![0];
    for (let i = 0; i < 3; i++) await (direct as Redis).xclaim(stream, 'redscale', 'ghost', 0, poison);
    const sink = recordingSink<number>();
    const consumer = buffer.consume(sink.flush, { ...FAST, claimIdle: '500ms', maxAttempts: 4 });
    await waitUntil('the survivor delivered', async () => sink.committed.length === 1, 5_000);
    await waitUntil('the poison pill dead-lettered', async () => (await buffer.backlog()).deadLetters === 1);
    await consumer.stop();
    expect(sink.committed[0]).toMatchObject({ id: 'survivor', attempt: 2 });
    expect(sink.attempts.map((item) => item.id)).toEqual(['survivor']);
    const [dead] = await buffer.deadLetters();
    expect(dead).toMatchObject({ id: 'poison', attempts: 4 });
    expect(dead?.error).toMatch(/not acknowledged after 4 deliveries/);
    expect((await buffer.backlog()).size).toBe(0);
  });

  it('prunes consumers that left with nothing pending, and a stopping consumer leaves the group', async () => {
    const { direct, prefix } = await proxied();
    const { buffer } = make<number>(direct, prefix);
    await buffer.enqueue(1);
    const stream = buffer.keys[0]!.stream;
    await (direct as Redis).xgroup('CREATECONSUMER', stream, 'redscale', 'ghost-of-a-deploy');
    const consumerNames = async () =>
      ((await (direct as Redis).xinfo('CONSUMERS', stream, 'redscale')) as string[][]).map((info) => info[1]);
    const sink = recordingSink<number>();
    const consumer = buffer.consume(sink.flush, { ...FAST, pruneIdle: '1s', consumerName: 'me' });
    await waitUntil('the ghost pruned', async () => !(await consumerNames()).includes('ghost-of-a-deploy'), 5_000);
    // Redis 7.0 does not refresh a consumer's idle time on an empty read, so a live consumer with
    // nothing pending may be pruned too: harmless, its next read that finds items recreates it.
    await buffer.enqueue(2);
    await waitUntil('the next item delivered', async () => sink.committed.length === 2);
    expect(await consumerNames()).not.toContain('ghost-of-a-deploy');
    await consumer.stop();
    expect(await consumerNames()).toEqual([]);
  });

  it('keeps an item pending when the dead-letter stream is full, reports it, and moves it once there is room', async () => {
    const { direct, prefix } = await proxied();
    const { buffer, errors } = make<number>(direct, prefix, { maxDeadLetters: 1 });
    await buffer.enqueueMany([1, 2]);
    const consumer = buffer.consume(
      async (items) => ({ failed: items.map((item) => ({ id: item.id, error: 'always' })) }),
      { ...FAST, maxAttempts: 1, retryDelay: { min: 0, max: 300 } },
    );
    await waitUntil('the dead-letter stream full', async () =>
      errors.some((error) => error.code === 'ERR_BUFFER_FULL'),
    );
    expect(await buffer.backlog()).toMatchObject({ size: 1, pending: 1, deadLetters: 1 });
    const [first] = await buffer.deadLetters();
    await buffer.deleteDeadLetters([first!.deadLetterId]);
    await waitUntil('the second dead-lettered', async () => (await buffer.backlog()).size === 0, 5_000);
    await consumer.stop();
    expect((await buffer.deadLetters()).map((letter) => letter.item)).toEqual([first!.item === 1 ? 2 : 1]);
  });
});

describe('WriteBuffer on a Redis of its own', () => {
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.dispose()));
  });

  it('recovers when Redis loses its data (the group is recreated) and when it goes away and comes back', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = createClient({ url: server.url, onError: quiet });
    const errors: RedscaleError[] = [];
    const buffer = new WriteBuffer<number>({ redis, name: 'writes', timeout: '300ms', onError: (e) => errors.push(e) });
    const sink = recordingSink<number>();
    const consumer = buffer.consume(sink.flush, FAST);
    await buffer.enqueue(1);
    await waitUntil('first item', async () => sink.committed.length === 1);

    await server.kill(); // no persistence: the stream and its group are gone when it comes back
    const started = performance.now();
    const down = (await buffer.enqueue(2).catch((e: unknown) => e)) as RedscaleError;
    expect(['ERR_TIMEOUT', 'ERR_REDIS']).toContain(down.code);
    expect(performance.now() - started).toBeLessThan(1_500);
    await sleep(500);
    await server.restart();
    await waitUntil('enqueue works again', async () => Boolean(await buffer.enqueue(3).catch(() => false)), 10_000);
    await waitUntil('the new item delivered', async () => sink.committed.some((item) => item.item === 3), 10_000);
    await consumer.stop();
    expect(errors.length).toBeGreaterThan(0); // the consumer reported the outage instead of crashing
    expect(await buffer.backlog()).toMatchObject({ size: 0, pending: 0 });
    redis.disconnect();
  }, 30_000);

  it('stop() while Redis is down returns within a few timeouts, reports the failures and leaves nothing unhandled', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = createClient({ url: server.url, onError: quiet });
    const errors: RedscaleError[] = [];
    const buffer = new WriteBuffer<number>({ redis, name: 'writes', timeout: '200ms', onError: (e) => errors.push(e) });
    // Item 2 fails and waits for a retry: the consumer holds it, and must hand it over on stop.
    const sink = recordingSink<number>({ fail: (item) => (item.item === 2 ? 'sink rejected it' : undefined) });
    const consumer = buffer.consume(sink.flush, { ...FAST, retryDelay: { min: '10s', max: '10s' } });
    await buffer.enqueueMany([1, 2]);
    await waitUntil('delivered', async () => sink.attempts.length === 2);
    await server.kill();
    const started = performance.now();
    await consumer.stop();
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(consumer.running).toBe(false);
    expect(errors.some((error) => error.context.operation === 'write buffer hold')).toBe(true);
    expect(errors.every((error) => ['ERR_TIMEOUT', 'ERR_REDIS'].includes(error.code))).toBe(true);
    redis.disconnect();
    await sleep(300);
    expect(rejections.list).toEqual([]);
  }, 30_000);
});

describe('WriteBuffer on a Cluster with a dead master', () => {
  it('enqueue skips the shards of a master whose circuit opened; the other shards take the items', async () => {
    const proxies = await ClusterProxies.start(inject('clusterNodes'));
    const redis = createClient({ nodes: proxies.nodes, clusterOptions: { natMap: proxies.natMap }, onError: quiet });
    const direct = createClient({ nodes: inject('clusterNodes'), onError: quiet });
    const prefix = randomPrefix('buffer-cluster');
    const buffer = new WriteBuffer<number>({
      redis,
      prefix,
      name: 'writes',
      shards: 3,
      timeout: '150ms',
      circuitBreaker: { failureThreshold: 2, failureWindow: 0, cooldown: '1m' },
    });
    try {
      await redis.ping();
      const deadNode = nodeOf(redis, buffer.keys[0]!.stream);
      const deadProxy = proxies.all.find((proxy) => `127.0.0.1:${proxy.port}` === deadNode)!;
      deadProxy.set({ kind: 'blackhole' });
      const outcomes: string[] = [];
      for (let n = 0; n < 30; n++) {
        outcomes.push(
          await buffer.enqueue(n).then(
            () => 'ok',
            (error: RedscaleError) => error.code,
          ),
        );
      }
      // Two timeouts on the dead master's shard open its circuit; from then on it is skipped.
      const failed = outcomes.filter((outcome) => outcome !== 'ok');
      expect(failed).toEqual(['ERR_TIMEOUT', 'ERR_TIMEOUT']);
      const backlog = await Promise.all(buffer.keys.map((keys) => direct.xlen(keys.stream)));
      expect(backlog).toEqual([0, expect.any(Number), expect.any(Number)]);
      expect(backlog[1]! + backlog[2]!).toBe(28);
    } finally {
      redis.disconnect();
      await proxies.close();
      await deletePrefix(direct, prefix);
      direct.disconnect();
    }
  });
});
