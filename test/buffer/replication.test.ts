import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { addressOf, nodeOf } from '../../src/client/cluster.js';
import { InvalidOptionError, WriteBuffer, WriteBufferNotReplicatedError } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, type Topology, unhandledRejections } from '../harness/context.js';
import { waitUntil } from '../harness/index.js';
import { bufferFactory, FAST, recordingSink, stopAtEnd } from './support.js';

const rejections = unhandledRejections();

// The shared servers have no replicas: asking for one must reject with the named error, and the
// item is still written (at least once). That a replica's acknowledgement is counted, and every
// acknowledged item survives a failover, is proven on a Sentinel set in test/ha/buffer-failover.test.ts.
describe.each<Topology>(['standalone', 'cluster'])('WriteBuffer replicas on %s without replicas', (topology) => {
  const factory = bufferFactory(topology);
  const stopLater = stopAtEnd();
  afterEach(() => {
    expect(rejections.list).toEqual([]);
  });

  it('enqueue rejects with WriteBufferNotReplicatedError naming the id; the item was still written and is delivered', async () => {
    const { buffer } = factory.make<{ n: number }>({ replicas: 1, replicationTimeout: 30 });
    const error = await buffer.enqueue({ n: 1 }, { id: 'item-1' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WriteBufferNotReplicatedError);
    expect(error).toMatchObject({
      code: 'ERR_NOT_REPLICATED',
      buffer: 'writes',
      ids: ['item-1'],
      required: 1,
      acknowledged: 0,
      context: { ids: ['item-1'], timeoutMs: 30 },
    });
    expect((error as Error).message).toMatch(/only 0 of the 1 replica asked for acknowledged within 30ms/);
    // At least once: the primary has it, and a retry under the same id is dropped by the handler.
    expect((await buffer.backlog()).size).toBe(1);
    const sink = recordingSink<{ n: number }>();
    const consumer = stopLater(buffer.consume(sink.flush, FAST));
    await waitUntil('the item committed', async () => sink.committed.length >= 1);
    await consumer.stop();
    expect(sink.committed.map((item) => item.id)).toEqual(['item-1']);
  });

  it('enqueueMany: one WAIT on the master of the shard the batch went to, and the error names every id', async () => {
    const { buffer } = factory.make({ replicas: 1, replicationTimeout: 20, shards: 3 });
    const waitedOn: string[] = [];
    const original = Redis.prototype.sendCommand;
    Redis.prototype.sendCommand = function (this: Redis, command, ...rest) {
      if (command.name === 'wait') waitedOn.push(addressOf(this));
      return original.call(this, command, ...rest);
    } as typeof original;
    let error: unknown;
    try {
      error = await buffer.enqueueMany([{ a: 1 }, { b: 2 }], { ids: ['x', 'y'] }).catch((caught: unknown) => caught);
    } finally {
      Redis.prototype.sendCommand = original;
    }
    expect(error).toBeInstanceOf(WriteBufferNotReplicatedError);
    const { shard, ids } = error as WriteBufferNotReplicatedError;
    expect(ids).toEqual(['x', 'y']);
    if (topology === 'standalone') expect(waitedOn).toHaveLength(1);
    else expect(waitedOn).toEqual([nodeOf(factory.redis, buffer.keys[shard]?.stream as string)]);
    const backlog = await buffer.backlog();
    expect(backlog.shards.find((s) => s.shard === shard)?.size).toBe(2);
  });

  it('a full backlog is refused without a WAIT (nothing was written to replicate)', async () => {
    const { buffer } = factory.make({ replicas: 1, replicationTimeout: 20, maxBacklog: 1 });
    await expect(buffer.enqueue({ n: 1 })).rejects.toBeInstanceOf(WriteBufferNotReplicatedError);
    const log = await countCommands(async () => {
      await expect(buffer.enqueue({ n: 2 })).rejects.toMatchObject({ code: 'ERR_BUFFER_FULL' });
    });
    expect(log.names).not.toContain('wait');
  });

  it('replicas: 0 (the default) sends no WAIT: enqueue and enqueueMany stay one round trip', async () => {
    const { buffer } = factory.make();
    await buffer.enqueue({ warm: true }); // the first call of a script sends EVAL, later ones EVALSHA
    const one = await countCommands(() => buffer.enqueue({ n: 1 }));
    const many = await countCommands(() => buffer.enqueueMany([{ n: 2 }, { n: 3 }]));
    expect(one.count).toBe(1);
    expect(many.count).toBe(1);
    expect([...one.names, ...many.names]).not.toContain('wait');
  });

  it('replicas: 1 adds exactly one command, the WAIT', async () => {
    const { buffer } = factory.make({ replicas: 1, replicationTimeout: 10 });
    await buffer.enqueue({ warm: true }).catch(() => undefined);
    const log = await countCommands(() => buffer.enqueue({ n: 1 }).catch(() => undefined));
    expect(log.count).toBe(2);
    expect(log.names[1]).toBe('wait');
  });
});

describe('WriteBuffer replicas options', () => {
  const redis = connect('standalone');
  afterAll(() => redis.disconnect());

  it('refuses a bad replicas or replicationTimeout, naming the option', () => {
    expect(() => new WriteBuffer({ redis, name: 'b', replicas: -1 })).toThrow(InvalidOptionError);
    expect(() => new WriteBuffer({ redis, name: 'b', replicas: 1.5 })).toThrow(/"replicas"/);
    expect(() => new WriteBuffer({ redis, name: 'b', replicas: 101 })).toThrow(/"replicas"/);
    expect(() => new WriteBuffer({ redis, name: 'b', replicationTimeout: 0 })).toThrow(/"replicationTimeout"/);
    expect(() => new WriteBuffer({ redis, name: 'b', replicas: 1, replicationTimeout: '250ms' })).not.toThrow();
  });
});
