import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fixedWindow, RateLimiter, type RedisLike, slidingLog } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix, type Topology, unhandledRejections } from '../harness/context.js';
import { ClusterProxies, FaultProxy } from '../harness/fault-proxy.js';

const rejections = unhandledRejections();
const TIMEOUT = 150;

/**
 * A call redscale gave up on must have no later effect. ioredis holds a command that got no
 * answer and sends it when the link resumes, or resends it after reconnecting: the script then
 * runs after its caller's deadline and must change nothing. A plain ioredis client, as a user
 * would pass one (no command timeout, 20 retries), sits behind a fault proxy; a second client
 * reads the truth directly.
 */
describe.each<Topology>(['standalone', 'cluster'])('a call redscale gave up on never counts later (%s)', (topology) => {
  let proxies: FaultProxy[];
  let closeProxies: () => Promise<void>;
  let plain: Redis | Cluster;
  const direct = connect(topology);
  const prefixes: string[] = [];

  beforeAll(async () => {
    if (topology === 'standalone') {
      const proxy = await FaultProxy.start(inject('redisUrl'));
      proxies = [proxy];
      closeProxies = () => proxy.close();
      plain = new Redis(proxy.url);
    } else {
      const cluster = await ClusterProxies.start(inject('clusterNodes'));
      proxies = cluster.all;
      closeProxies = () => cluster.close();
      plain = new Cluster(cluster.nodes, { natMap: cluster.natMap });
    }
    plain.on('error', () => {});
    await plain.ping();
  });
  afterAll(async () => {
    plain.disconnect();
    await closeProxies();
    for (const prefix of prefixes) await deletePrefix(direct, prefix);
    direct.disconnect();
  });

  function limiters(limits = fixedWindow({ limit: 100, window: '1h' })) {
    const prefix = randomPrefix('late');
    prefixes.push(prefix);
    const common = { prefix, limits, localDenyCache: false as const };
    return {
      through: new RateLimiter({
        ...common,
        redis: plain as RedisLike,
        timeout: TIMEOUT,
        onRedisError: 'deny',
        circuitBreaker: false,
      }),
      truth: new RateLimiter({ ...common, redis: direct, timeout: '5s' }),
    };
  }

  const setAll = (mode: Parameters<FaultProxy['set']>[0]) => {
    for (const proxy of proxies) proxy.set(mode);
  };

  it('consume, hit, refund and reset held on a stalled link change nothing when it resumes', async () => {
    const { through, truth } = limiters();
    // Two counted calls; they also teach the limiter the server's clock.
    expect(await through.consume('u')).toMatchObject({ allowed: true, source: 'redis' });
    expect(await through.hit('u')).toMatchObject({ source: 'redis', remaining: 98 });

    setAll({ kind: 'pause' });
    expect(await through.consume('u')).toMatchObject({ source: 'policy', error: { code: 'ERR_TIMEOUT' } });
    expect(await through.hit('u')).toMatchObject({ source: 'policy', error: { code: 'ERR_TIMEOUT' } });
    await expect(through.refund('u')).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    await expect(through.reset('u')).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    // Every deadline has passed; now the stalled commands reach Redis.
    await sleep(50);
    setAll({ kind: 'pass' });
    await plain.ping();
    await sleep(50);

    expect((await truth.peek('u')).limits[0]?.used).toBe(2);
    // The limiter is back on Redis and counts from where Redis was.
    expect(await through.consume('u')).toMatchObject({ source: 'redis', remaining: 97 });
  });

  it('a check ioredis resends after reconnecting does not count', async () => {
    const { through, truth } = limiters(slidingLog({ limit: 100, window: '1h' }));
    expect(await through.consume('u')).toMatchObject({ allowed: true, source: 'redis' });

    // The request never arrives; the caller gives up; the link drops; ioredis reconnects and
    // resends what was never answered.
    setAll({ kind: 'blackhole' });
    expect(await through.consume('u')).toMatchObject({ source: 'policy', error: { code: 'ERR_TIMEOUT' } });
    setAll({ kind: 'pass' });
    for (const proxy of proxies) proxy.resetAll();
    await sleep(100);
    await plain.ping();
    await sleep(100);

    expect((await truth.peek('u')).limits[0]?.used).toBe(1);
    expect(await through.consume('u')).toMatchObject({ source: 'redis', remaining: 98 });
    expect(rejections.list).toEqual([]);
  });
});
