import { afterAll, describe, expect, it } from 'vitest';
import { createClient, Lock, type RedisLike, scanEveryMaster } from '../../src/index.js';
import { connect, deletePrefix, quiet, randomPrefix, type Topology } from '../harness/context.js';
import { RedisServer } from '../harness/index.js';

/** The server's clock in µs, read by the TIME command on the node that owns `key`. */
async function serverMicros(redis: RedisLike, key: string): Promise<number> {
  // EVAL with the key routes to its node on a Cluster; TIME itself takes no key.
  const [seconds, micros] = (await redis.eval("return redis.call('TIME')", 1, key)) as [string, string];
  return Number(seconds) * 1_000_000 + Number(micros);
}

describe('fencing tokens when Redis loses the counter', () => {
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.dispose()));
  });

  it('keep increasing across a restart without persistence', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = createClient({ url: server.url, onError: quiet });
    const lock = new Lock({ redis, prefix: randomPrefix('restart') });
    const before: number[] = [];
    for (let i = 0; i < 5; i++) {
      const handle = await lock.acquire('ledger');
      before.push(handle.fence);
      await handle.release();
    }
    for (let i = 1; i < before.length; i++) expect(before[i]).toBeGreaterThan(before[i - 1] as number);

    await server.kill();
    await server.restart();
    expect(await server.command('DBSIZE')).toBe(':0\r\n');
    let after: number | undefined;
    for (let i = 0; i < 100 && after === undefined; i++) {
      const handle = await lock.acquire('ledger').catch(() => undefined);
      after = handle?.fence;
      await handle?.release();
    }
    expect(after).toBeGreaterThan(before.at(-1) as number);
    redis.disconnect();
  });
});

describe.each<Topology>(['standalone', 'cluster'])('fencing tokens on %s', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('fence');
  const lock = new Lock({ redis, prefix, ttl: '2s' });
  const keysOf = (resource: string) => ({
    lock: `${prefix}:lock:{${resource}}`,
    fence: `${prefix}:lock:{${resource}}:fence`,
  });
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('are never below the server time in µs, and keep increasing when the fence key is evicted', async () => {
    const { fence: fenceKey } = keysOf('evicted');
    const start = await serverMicros(redis, fenceKey);
    const first = await lock.acquire('evicted');
    const end = await serverMicros(redis, fenceKey);
    expect(first.fence).toBeGreaterThanOrEqual(start);
    expect(first.fence).toBeLessThanOrEqual(end);
    await first.release();
    // What an eviction or a failover to a replica that never saw the key would do.
    expect(await redis.del(fenceKey)).toBe(1);
    const second = await lock.acquire('evicted');
    expect(second.fence).toBeGreaterThan(first.fence);
    await second.release();
  });

  it('leave no immortal key: the fence key lives for the ttl plus 60 s, and a burst still gets distinct rising tokens', async () => {
    const keys = keysOf('burst');
    const fences: number[] = [];
    for (let i = 0; i < 50; i++) {
      const handle = await lock.acquire('burst');
      fences.push(handle.fence);
      await handle.release();
    }
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1] as number);
    expect(await redis.exists(keys.lock)).toBe(0);
    const pttl = await redis.pttl(keys.fence);
    expect(pttl).toBeGreaterThan(60_000);
    expect(pttl).toBeLessThanOrEqual(62_000);
    // Every key the lock left behind expires.
    for await (const batch of scanEveryMaster(redis, { match: `${prefix}*` })) {
      for (const key of batch) expect(await redis.pttl(key)).toBeGreaterThan(0);
    }
  });

  it('carry on above a counter left by redscale 0.1 (no ttl), and give that key a ttl', async () => {
    const keys = keysOf('legacy');
    await redis.set(keys.fence, '5');
    const handle = await lock.acquire('legacy');
    expect(handle.fence).toBeGreaterThan(5);
    expect(await redis.pttl(keys.fence)).toBeGreaterThan(0);
    await handle.release();
  });

  it('follow the last token when it is ahead of the server clock (a clock stepped back)', async () => {
    const keys = keysOf('ahead');
    const ahead = (await serverMicros(redis, keys.fence)) + 3_600_000_000;
    await redis.set(keys.fence, String(ahead), 'PX', 60_000);
    const handle = await lock.acquire('ahead');
    expect(handle.fence).toBe(ahead + 1);
    await handle.release();
  });
});
