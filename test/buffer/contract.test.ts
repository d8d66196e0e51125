import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeOf } from '../../src/client/cluster.js';
import { isCluster, WriteBufferFullError } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { type Topology, unhandledRejections } from '../harness/context.js';
import { waitUntil } from '../harness/index.js';
import { bufferFactory, FAST, recordingSink, stopAtEnd } from './support.js';

const rejections = unhandledRejections();

describe.each<Topology>(['standalone', 'cluster'])('WriteBuffer on %s', (topology) => {
  const factory = bufferFactory(topology);
  const stopLater = stopAtEnd();
  afterEach(() => {
    expect(rejections.list).toEqual([]);
  });

  it('enqueue is one round trip and resolves with a stable id (the given one, or a fresh UUID)', async () => {
    const { buffer } = factory.make();
    await buffer.enqueue({ warm: true }); // the first call of a script sends EVAL, later ones EVALSHA
    let id = '';
    const log = await countCommands(async () => {
      id = await buffer.enqueue({ n: 1 });
    });
    expect(log.count).toBe(1);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await buffer.enqueue({ n: 2 }, { id: 'order-2' })).toBe('order-2');
    expect(await buffer.enqueueMany([{ n: 3 }, { n: 4 }], { ids: ['a', 'b'] })).toEqual(['a', 'b']);
    expect((await buffer.backlog()).size).toBe(5);
  });

  it('delivers every item exactly once, in batches of at most batchSize, and deletes what was committed', async () => {
    const { buffer, errors } = factory.make<{ n: number }>({ shards: 3 });
    const sink = recordingSink<{ n: number }>();
    for (let i = 0; i < 250; i += 50) {
      await buffer.enqueueMany(
        Array.from({ length: 50 }, (_, j) => ({ n: i + j })),
        { ids: Array.from({ length: 50 }, (_, j) => `item-${i + j}`) },
      );
    }
    const consumer = stopLater(buffer.consume(sink.flush, { ...FAST, batchSize: 40 }));
    await waitUntil('all items committed', async () => sink.committed.length >= 250);
    await consumer.stop();

    expect(sink.committed.map((item) => item.id).sort()).toEqual(
      Array.from({ length: 250 }, (_, i) => `item-${i}`).sort(),
    );
    expect(new Set(sink.committed.map((item) => item.item.n)).size).toBe(250);
    expect(Math.max(...sink.batches.map((batch) => batch.length))).toBeLessThanOrEqual(40);
    for (const item of sink.committed) {
      expect(item.attempt).toBe(1);
      expect(item.enqueuedAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
    }
    expect(await buffer.backlog()).toMatchObject({ size: 0, pending: 0, deadLetters: 0 });
    expect(errors).toEqual([]);
  });

  it('acknowledges only what flush committed: reported failures are retried with backoff, then committed', async () => {
    const { buffer } = factory.make<{ n: number }>();
    const sink = recordingSink<{ n: number }>({
      fail: (item) =>
        item.item.n % 3 === 0 && item.attempt < 3 ? new Error(`sink rejected ${item.item.n}`) : undefined,
    });
    await buffer.enqueueMany(Array.from({ length: 30 }, (_, n) => ({ n })));
    const consumer = stopLater(
      buffer.consume(sink.flush, { ...FAST, retryDelay: { min: '100ms', max: '100ms' }, maxAttempts: 5 }),
    );
    // After the first batch, exactly the failed items are still pending; the rest are gone.
    await waitUntil('the first flush', async () => sink.batches.length >= 1);
    await sleep(30);
    expect(await buffer.backlog()).toMatchObject({ size: 10, pending: 10 });
    await waitUntil('all committed', async () => sink.committed.length >= 30);
    await consumer.stop();

    const retried = sink.attempts.filter((item) => item.item.n % 3 === 0);
    expect(retried.map((item) => item.attempt).sort()).toEqual(
      [...Array(10).fill(1), ...Array(10).fill(2), ...Array(10).fill(3)].sort(),
    );
    expect(sink.committed).toHaveLength(30);
    expect((await buffer.backlog()).size).toBe(0);
  });

  it('dead-letters an item after maxAttempts failed flushes, with its last error; replays and deletes dead letters', async () => {
    const { buffer } = factory.make<{ n: number }>({ shards: 2 });
    let healthy = false;
    const sink = recordingSink<{ n: number }>({
      fail: (item) =>
        !healthy && item.item.n >= 8
          ? new Error(`constraint violated by ${item.item.n} (attempt ${item.attempt})`)
          : undefined,
    });
    await buffer.enqueueMany(
      Array.from({ length: 10 }, (_, n) => ({ n })),
      {
        ids: Array.from({ length: 10 }, (_, n) => `m${n}`),
      },
    );
    const consumer = stopLater(buffer.consume(sink.flush, { ...FAST, maxAttempts: 3 }));
    await waitUntil('two dead letters', async () => (await buffer.backlog()).deadLetters === 2);

    const dead = await buffer.deadLetters();
    expect(dead.map((letter) => letter.id).sort()).toEqual(['m8', 'm9']);
    for (const letter of dead) {
      expect(letter.attempts).toBe(3);
      expect(letter.error).toBe(`constraint violated by ${letter.item?.n} (attempt 3)`);
      expect(letter.item).toEqual({ n: Number(letter.id?.slice(1)) });
      expect(letter.failedAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
    }
    expect(sink.attempts.filter((item) => item.id === 'm8')).toHaveLength(3);
    expect((await buffer.backlog()).size).toBe(0);

    healthy = true;
    expect(await buffer.replayDeadLetters({ ids: [(dead[0] as { deadLetterId: string }).deadLetterId] })).toEqual({
      replayed: 1,
      full: false,
    });
    await waitUntil('the replayed item committed', async () => sink.committed.some((item) => item.id === dead[0]?.id));
    const replayed = sink.committed.find((item) => item.id === dead[0]?.id);
    expect(replayed?.attempt).toBe(1);
    expect(await buffer.deleteDeadLetters([(dead[1] as { deadLetterId: string }).deadLetterId])).toBe(1);
    expect(await buffer.deadLetters()).toEqual([]);
    await consumer.stop();
  });

  it('rejects enqueue with WriteBufferFullError at maxBacklog, trimming nothing, and accepts again once items are committed', async () => {
    const { buffer } = factory.make<number>({ maxBacklog: 10 });
    await buffer.enqueueMany(Array.from({ length: 9 }, (_, n) => n));
    await expect(buffer.enqueueMany([9, 10])).rejects.toMatchObject({ code: 'ERR_BUFFER_FULL', stream: 'backlog' });
    await buffer.enqueue(9);
    const full = await buffer.enqueue(10).catch((error: unknown) => error);
    expect(full).toBeInstanceOf(WriteBufferFullError);
    expect((full as WriteBufferFullError).context).toMatchObject({ buffer: 'writes', limit: 10 });
    expect((await buffer.backlog()).size).toBe(10);

    const sink = recordingSink<number>();
    const consumer = stopLater(buffer.consume(sink.flush, FAST));
    await waitUntil('drained', async () => sink.committed.length === 10);
    await consumer.stop();
    expect(sink.committed.map((item) => item.item).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await buffer.enqueue(10);
  });

  it('dead-letters a malformed entry (a foreign XADD) without calling flush with it, and keeps consuming', async () => {
    const { buffer, errors } = factory.make<{ n: number }>();
    const sink = recordingSink<{ n: number }>();
    const stream = buffer.keys[0]?.stream as string;
    await buffer.enqueue({ n: 1 }, { id: 'good-1' });
    await factory.redis.xadd(stream, '*', 'foreign', 'field');
    await factory.redis.xadd(stream, '*', 'i', 'bad-json', 'd', '{not json');
    await buffer.enqueue({ n: 2 }, { id: 'good-2' });
    const consumer = stopLater(buffer.consume(sink.flush, FAST));
    await waitUntil('two dead letters', async () => (await buffer.backlog()).deadLetters === 2);
    await waitUntil('good items committed', async () => sink.committed.length === 2);
    await consumer.stop();

    expect(sink.attempts.map((item) => item.id)).toEqual(['good-1', 'good-2']);
    const dead = await buffer.deadLetters();
    expect(dead.map((letter) => letter.error)).toEqual([
      'malformed entry: not an item written by enqueue (unexpected fields)',
      expect.stringMatching(/^malformed entry: the payload could not be deserialized/),
    ]);
    expect(dead[0]?.raw).toBe('["foreign","field"]');
    expect(dead[0]?.id).toBeUndefined();
    expect(dead[1]).toMatchObject({ id: 'bad-json', raw: '{not json', item: undefined });
    expect(errors).toEqual([]);
  });

  it('treats a flush that throws, or returns something malformed, as a failure of the whole batch', async () => {
    const { buffer } = factory.make<number>();
    await buffer.enqueueMany([1, 2, 3]);
    let calls = 0;
    const seen: number[][] = [];
    const consumer = stopLater(
      buffer.consume(
        async (items) => {
          calls++;
          seen.push(items.map((item) => item.attempt));
          if (calls === 1) throw new Error('database is down');
          if (calls === 2) return { failed: 'everything' } as never;
          if (calls === 3) return { failed: [{ nope: true }] } as never;
        },
        // No backoff, so the three items are retried together and each call sees all of them.
        { ...FAST, maxAttempts: 10, retryDelay: { min: 0, max: 1 } },
      ),
    );
    await waitUntil('the fourth flush', async () => calls >= 4);
    await consumer.stop();
    expect(seen.slice(0, 4)).toEqual([
      [1, 1, 1],
      [2, 2, 2],
      [3, 3, 3],
      [4, 4, 4],
    ]);
    expect((await buffer.backlog()).size).toBe(0);
  });

  it('stop() drains: the flush in progress finishes and is acknowledged before it resolves; nothing is read after', async () => {
    const { buffer } = factory.make<number>();
    const sink = recordingSink<number>({ delayMs: 400 });
    await buffer.enqueueMany([1, 2, 3]);
    const consumer = buffer.consume(sink.flush, FAST);
    await waitUntil('a flush in progress', async () => sink.batches.length === 1);
    await consumer.stop();
    expect(consumer.running).toBe(false);
    expect(sink.committed).toHaveLength(3);
    expect(await buffer.backlog()).toMatchObject({ size: 0, pending: 0 });
    await buffer.enqueue(4);
    await sleep(200);
    expect(sink.batches).toHaveLength(1);
    expect(consumer.stats()).toMatchObject({ delivered: 3, committed: 3, failed: 0 });
  });

  it('a flush longer than claimIdle keeps its items: the heartbeat stops a second consumer from taking them', async () => {
    const { buffer } = factory.make<number>();
    const slow = recordingSink<number>({ delayMs: 1_500 });
    const other = recordingSink<number>();
    await buffer.enqueueMany([1, 2, 3, 4, 5]);
    const first = stopLater(buffer.consume(slow.flush, { ...FAST, claimIdle: '300ms', batchSize: 5 }));
    await waitUntil('the slow flush started', async () => slow.batches.length === 1);
    const second = stopLater(buffer.consume(other.flush, { ...FAST, claimIdle: '300ms' }));
    await waitUntil('the slow flush committed', async () => slow.committed.length === 5, 10_000);
    await sleep(400);
    await Promise.all([first.stop(), second.stop()]);
    expect(other.attempts).toEqual([]);
    expect(second.stats().claimed).toBe(0);
  });

  it('spreads shards over hash tags of their own, one consumer group per stream', async () => {
    const { buffer } = factory.make<number>({ shards: 3 });
    const tags = buffer.keys.map((keys) => /\{[^}]+\}/.exec(keys.stream)?.[0]);
    expect(new Set(tags).size).toBe(3);
    for (const keys of buffer.keys) expect(keys.deadLetters).toBe(`${keys.stream}:dead`);
    if (isCluster(factory.redis)) {
      await factory.redis.ping();
      // One shard per master with the fixture's even slot layout: throughput grows with masters.
      expect(new Set(buffer.keys.map((keys) => nodeOf(factory.redis, keys.stream))).size).toBe(3);
    }
    await buffer.enqueueMany([1]);
    await buffer.enqueue(2);
    await buffer.enqueue(3);
    // Round robin: three calls, three shards.
    expect((await buffer.backlog()).shards.map((shard) => shard.size)).toEqual([1, 1, 1]);
    for (const keys of buffer.keys) {
      const groups = (await factory.redis.xinfo('GROUPS', keys.stream)) as unknown[][];
      expect(groups).toHaveLength(1);
    }
  });

  it('validates its options, naming the one at fault', async () => {
    expect(() => factory.make({ shards: 0 })).toThrow(/"shards".*from 1 to 256|"shards"/);
    expect(() => factory.make({ name: '' })).toThrow(/"name"/);
    const { buffer } = factory.make();
    expect(() => buffer.consume(async () => {}, { batchSize: 5_000 })).toThrow(/"batchSize"/);
    expect(() => buffer.consume(async () => {}, { retryDelay: { min: '2s', max: '1s' } })).toThrow(/"retryDelay"/);
    expect(() => buffer.consume('nope' as never)).toThrow(/"flush"/);
    await expect(buffer.enqueue(1, { id: '' })).rejects.toThrow(/"id"/);
  });
});
