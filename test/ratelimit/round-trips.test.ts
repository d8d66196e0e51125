import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createClient, fixedWindow, RateLimiter, slidingLog, slidingWindow } from '../../src/index.js';
import { RedisCluster } from '../harness/cluster.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';
import { RedisServer } from '../harness/redis-server.js';

describe.each<Topology>(['standalone', 'cluster'])('round trips on %s', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('rt');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('a check is exactly one command, with one limit or three', async () => {
    await redis.ping();
    const one = new RateLimiter({ redis, prefix, limits: fixedWindow({ limit: 100, window: '1m' }) });
    const three = new RateLimiter({
      redis,
      prefix: `${prefix}:3`,
      limits: [
        slidingWindow({ limit: 10, window: '1s' }),
        fixedWindow({ limit: 1_000, window: '1d' }),
        slidingLog({ limit: 50, window: '1m' }),
      ],
      blockFor: '1m',
    });
    // Each server learns each script once (EVALSHA, NOSCRIPT, EVAL); then one command per call.
    for (const limiter of [one, three]) {
      await limiter.consume('warm');
      await limiter.refund('warm');
      await limiter.reset('warm');
    }
    expect(await countCommands(() => one.consume('u'))).toEqual({ count: 1, names: ['evalsha'] });
    expect(await countCommands(() => three.consume('u'))).toEqual({ count: 1, names: ['evalsha'] });
    expect((await countCommands(() => three.peek('u'))).count).toBe(1);
    expect((await countCommands(() => three.refund('u'))).count).toBe(1);
    expect(await countCommands(() => three.reset('u'))).toEqual({ count: 1, names: ['evalsha'] });
  });

  it('concurrent checks are coalesced: one script call on standalone, one command each on a Cluster', async () => {
    const batched = new RateLimiter({
      redis,
      prefix: `${prefix}:batch`,
      limits: fixedWindow({ limit: 5, window: '1m' }),
    });
    const single = new RateLimiter({
      redis,
      prefix: `${prefix}:single`,
      limits: fixedWindow({ limit: 5, window: '1m' }),
      batch: false,
    });
    const ids = Array.from({ length: 40 }, (_, i) => `id-${i}`);
    // Connections to every node open, and every node has the script (EVAL on first use).
    await Promise.all(ids.map((id) => batched.peek(id)));
    // Checks answered in a turn count as in flight until it ends (their callers' next checks
    // react to them): start each burst below from idle.
    const idle = () => new Promise((resolve) => setImmediate(resolve));
    await idle();
    const together = await countCommands(() => Promise.all(ids.map((id) => batched.consume(id))));
    const apart = await countCommands(() => Promise.all(ids.map((id) => single.consume(id))));
    expect(apart.count).toBe(40);
    // A batch goes once it holds a quarter of the checks in flight (at least one, at most 16),
    // the rest at the end of the turn. From idle: checks 1–8 alone (fewer than 8 in flight), then
    // batches of 2, 2, 3, 3, 4, 5, 6 (8 → 33 in flight), and the last 7 at the end of the turn:
    // 16 commands for 40 checks. On a Cluster the identities live in different slots: one
    // pipeline per node, a command each.
    expect(together.count).toBe(topology === 'standalone' ? 16 : 40);
    // Four at once from idle: fewer than 8 in flight, each goes alone, at once.
    await idle();
    const same = await countCommands(() => Promise.all(['x', 'y', 'z', 'w'].map((id) => batched.consume(id))));
    expect(same.count).toBe(4);
    // A different cost is a different call; a peek too.
    const mixed = await countCommands(() =>
      Promise.all([batched.consume('x'), batched.consume('y', { cost: 2 }), batched.peek('z'), batched.consume('w')]),
    );
    expect(mixed.count).toBe(4);
  });

  it('a lone check is sent at once, never held for a batch', async () => {
    const limiter = new RateLimiter({
      redis,
      prefix: `${prefix}:lone`,
      limits: fixedWindow({ limit: 5, window: '1m' }),
    });
    await limiter.consume('warm');
    const original = Redis.prototype.sendCommand;
    const sent: string[] = [];
    Redis.prototype.sendCommand = function (this: Redis, command, ...rest) {
      sent.push(command.name);
      return original.call(this, command, ...rest);
    } as typeof original;
    try {
      const pending = limiter.consume('u');
      // Handed to ioredis before consume() returned: nothing waits for the event loop's turn.
      expect(sent).toEqual(['evalsha']);
      expect((await pending).source).toBe('redis');
    } finally {
      Redis.prototype.sendCommand = original;
    }
  });

  it('a locally denied check costs no command at all', async () => {
    const limiter = new RateLimiter({
      redis,
      prefix: `${prefix}:deny`,
      limits: fixedWindow({ limit: 2, window: '1m' }),
    });
    await limiter.consume('u');
    await limiter.consume('u');
    expect((await countCommands(() => limiter.consume('u'))).count).toBe(1);
    const flood = await countCommands(async () => {
      for (let i = 0; i < 100; i++) expect((await limiter.consume('u')).reason).toBe('local-block');
    });
    expect(flood.count).toBe(0);
    // A smaller cost than the one refused may fit: it goes to Redis.
    const limiterWithRoom = new RateLimiter({
      redis,
      prefix: `${prefix}:cost`,
      limits: fixedWindow({ limit: 5, window: '1m' }),
    });
    await limiterWithRoom.consume('u', { cost: 3 });
    expect((await limiterWithRoom.consume('u', { cost: 3 })).allowed).toBe(false);
    expect((await countCommands(() => limiterWithRoom.consume('u', { cost: 3 }))).count).toBe(0);
    const smaller = await countCommands(async () =>
      expect((await limiterWithRoom.consume('u', { cost: 2 })).allowed).toBe(true),
    );
    expect(smaller.count).toBe(1);
  });

  it('survives SCRIPT FLUSH: the next check re-sends the script (one extra command, once)', async () => {
    // A Redis of its own: on the shared one, a test running beside this one may load the same
    // script between the flush and the check.
    const own = topology === 'cluster' ? await RedisCluster.start({ masters: 1 }) : await RedisServer.start();
    const client = own instanceof RedisCluster ? createClient({ nodes: own.nodes }) : createClient({ url: own.url });
    try {
      const limiter = new RateLimiter({
        redis: client,
        prefix: `${prefix}:flush`,
        limits: fixedWindow({ limit: 10, window: '1m' }),
      });
      // Two calls first: on a client this new, the first calls may still send EVAL (first use per server).
      await limiter.consume('u');
      await limiter.consume('u');
      const masters = client instanceof Cluster ? client.nodes('master') : [client as Redis];
      await Promise.all(masters.map((node) => node.script('FLUSH')));
      const after = await countCommands(async () => expect((await limiter.consume('u')).source).toBe('redis'));
      expect(after.names).toEqual(['evalsha', 'eval']);
      expect((await countCommands(() => limiter.consume('u'))).count).toBe(1);
    } finally {
      client.disconnect();
      await (own instanceof RedisCluster ? own.stop() : own.dispose());
    }
  }, 60_000);
});
