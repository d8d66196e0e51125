import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createClient,
  type HealthReport,
  InvalidOptionError,
  parseClusterNodes,
  parseInfo,
  RedisHealth,
} from '../../src/index.js';
import { connect, countKeys, deletePrefix, quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { RedisServer, startCluster, waitUntil } from '../harness/index.js';

const rejections = unhandledRejections();

const problemCodes = (report: HealthReport) => report.problems.map((problem) => problem.code);

describe('RedisHealth on a healthy standalone Redis', () => {
  const redis = connect('standalone');
  const prefix = randomPrefix('health');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('reports up with latency, role, memory, clients and a writable probe', async () => {
    const health = new RedisHealth({ redis, prefix });
    const report = await health.check();
    expect(report).toMatchObject({ status: 'up', mode: 'standalone' });
    expect(report.latencyMs).toBeGreaterThanOrEqual(0);
    const [node] = report.nodes;
    expect(node).toMatchObject({ status: 'up', role: 'master', writable: true });
    expect(node?.memory?.usedBytes).toBeGreaterThan(0);
    expect(node?.clients?.connected).toBeGreaterThanOrEqual(1);
    expect(Math.abs(node?.clockOffsetMs ?? Number.NaN)).toBeLessThan(1_000);
    expect(node?.evictedKeysSinceLastCheck).toBeNull();
    // The probe key stays inside the prefix.
    expect(await countKeys(redis, `${prefix}:health:`)).toBe(1);
    const second = await health.check();
    expect(second.nodes[0]?.evictedKeysSinceLastCheck).toBe(0);
  });

  it('shares one check between concurrent callers', async () => {
    const health = new RedisHealth({ redis, prefix });
    const [a, b] = await Promise.all([health.check(), health.check()]);
    expect(a).toBe(b);
  });

  it('answers liveness without touching Redis and readiness with 200', async () => {
    const idle = createClient({ url: 'redis://127.0.0.1:1', redisOptions: { lazyConnect: true } });
    const live = new RedisHealth({ redis: idle }).liveness();
    expect(live.statusCode).toBe(200);
    expect(live.body.status).toBe('up');
    expect(idle.status).toBe('wait');
    idle.disconnect();
    const ready = await new RedisHealth({ redis, prefix }).readiness();
    expect(ready.statusCode).toBe(200);
    expect(ready.body.status).toBe('up');
  });

  it('parses the real INFO text', async () => {
    const fields = parseInfo(await redis.info());
    expect(fields.redis_version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(fields.role).toBe('master');
    expect(Number(fields.used_memory)).toBeGreaterThan(0);
    expect(fields.maxmemory_policy).toBeTypeOf('string');
    expect(Object.keys(fields).some((key) => key.startsWith('#'))).toBe(false);
  });
});

describe('RedisHealth when things go wrong (own servers)', () => {
  const servers: RedisServer[] = [];
  const clients: Array<Redis | Cluster> = [];
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await Promise.all(servers.map((server) => server.dispose()));
  });
  async function server(args: string[] = []) {
    const started = await RedisServer.start({ args });
    servers.push(started);
    return started;
  }

  it('reports down within twice the timeout after the server is killed, even with ioredis defaults', async () => {
    const own = await server();
    // ioredis' defaults: 20 retries per request, no command timeout — the seeds' ~10 s hang.
    const redis = new Redis(own.url);
    redis.on('error', quiet);
    clients.push(redis);
    const health = new RedisHealth({ redis, timeout: 300 });
    expect((await health.check()).status).toBe('up');
    await own.kill();

    const started = performance.now();
    const report = await health.check();
    const elapsed = performance.now() - started;
    expect(report.status).toBe('down');
    expect(problemCodes(report)).toContain('unreachable');
    expect(report.nodes[0]).toMatchObject({ status: 'down', latencyMs: null });
    expect(elapsed).toBeLessThan(600);
    expect((await health.readiness()).statusCode).toBe(503);
    expect(health.liveness().statusCode).toBe(200);

    await own.restart();
    await waitUntil('health to recover', async () => (await health.check()).status === 'up');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(rejections.list).toEqual([]);
  });

  it('reports degraded when memory nears the maxmemory the test set', async () => {
    const own = await server();
    const redis = createClient({ url: own.url, onError: quiet });
    clients.push(redis);
    const health = new RedisHealth({ redis });
    await health.check();
    const used = Number(parseInfo(await redis.info('memory')).used_memory);
    await redis.config('SET', 'maxmemory', String(Math.round(used / 0.93)));
    const report = await health.check();
    expect(report.status).toBe('degraded');
    expect(problemCodes(report)).toEqual(['memory']);
    expect(report.nodes[0]?.memory?.usageRatio).toBeGreaterThanOrEqual(0.9);
    expect(report.nodes[0]?.writable).toBe(true);
    expect((await health.readiness()).statusCode).toBe(200);
  });

  it('reports down when the node refuses writes (OOM under noeviction)', async () => {
    const own = await server(['--maxmemory-policy', 'noeviction']);
    const redis = createClient({ url: own.url, onError: quiet });
    clients.push(redis);
    await redis.config('SET', 'maxmemory', '1');
    const report = await new RedisHealth({ redis }).check();
    expect(report.status).toBe('down');
    expect(report.nodes[0]).toMatchObject({ writable: false });
    expect(report.problems.find((problem) => problem.code === 'not-writable')?.message).toMatch(/OOM/);
  });

  it('warns about allkeys-* eviction and counts evictions since the last check', async () => {
    const own = await server(['--maxmemory-policy', 'allkeys-lru']);
    const redis = createClient({ url: own.url, onError: quiet });
    clients.push(redis);
    const health = new RedisHealth({ redis, memoryThreshold: 1 });
    const first = await health.check();
    expect(first.status).toBe('up');
    expect(problemCodes(first)).toContain('eviction-policy');
    const used = Number(parseInfo(await redis.info('memory')).used_memory);
    await redis.config('SET', 'maxmemory', String(used + 200_000));
    const value = 'x'.repeat(10_000);
    for (let i = 0; i < 100; i++) await redis.set(`evict:${i}`, value);
    const second = await health.check();
    expect(second.nodes[0]?.evictedKeysSinceLastCheck).toBeGreaterThan(0);
    expect(problemCodes(second)).toContain('evictions');
  });

  it('reports a replica and its master link', async () => {
    const primary = await server(['--repl-diskless-sync-delay', '0']);
    const replica = await server(['--replicaof', '127.0.0.1', String(primary.port)]);
    const redis = createClient({ url: replica.url, onError: quiet });
    clients.push(redis);
    const health = new RedisHealth({ redis, writeProbe: false });
    await waitUntil('replica link up', async () => (await health.check()).nodes[0]?.replication?.linkStatus === 'up');
    expect((await health.check()).nodes[0]).toMatchObject({ role: 'replica', status: 'up' });

    // A replica refuses writes: with the probe on, redscale cannot run on it.
    const probing = await new RedisHealth({ redis }).check();
    expect(probing.status).toBe('down');
    expect(probing.problems.find((problem) => problem.code === 'not-writable')?.message).toMatch(/READONLY/);

    await primary.kill();
    await waitUntil(
      'replica link down',
      async () => (await health.check()).nodes[0]?.replication?.linkStatus === 'down',
    );
    const report = await health.check();
    expect(report.status).toBe('degraded');
    expect(problemCodes(report)).toContain('replica-link-down');
  });
});

describe('RedisHealth on a Cluster', () => {
  it('reports the shared 3-master Cluster as up, node by node', async () => {
    const redis = connect('cluster');
    const prefix = randomPrefix('health');
    try {
      await redis.ping();
      const report = await new RedisHealth({ redis, prefix }).check();
      expect(report).toMatchObject({
        status: 'up',
        mode: 'cluster',
        cluster: { state: 'ok', slotsAssigned: 16384, slotsOk: 16384 },
      });
      expect(report.nodes).toHaveLength(3);
      for (const node of report.nodes) {
        expect(node).toMatchObject({ status: 'up', role: 'master', writable: true });
        expect(node.id).toMatch(/^[0-9a-f]{40}$/);
        expect(node.flags).toContain('master');
      }
      // One probe key per master.
      expect(await countKeys(redis, `${prefix}:health:`)).toBe(3);
      await deletePrefix(redis, prefix);
    } finally {
      redis.disconnect();
    }
  });

  it('shows the failed node, then down, after a master is killed', async () => {
    const cluster = await startCluster({ nodeTimeout: 500 });
    const redis = createClient({ nodes: cluster.nodes, onError: quiet });
    try {
      await redis.ping();
      const health = new RedisHealth({ redis, timeout: 300 });
      expect((await health.check()).status).toBe('up');
      const victim = cluster.servers[1]!;
      await victim.kill();
      const address = `127.0.0.1:${victim.port}`;

      let report = await health.check();
      await waitUntil('the killed master to be reported', async () => {
        report = await health.check();
        return report.nodes.some((node) => node.address === address && node.status === 'down');
      });
      await waitUntil('cluster_state:fail', async () => {
        report = await health.check();
        return report.cluster?.state === 'fail';
      });
      expect(report.status).toBe('down');
      expect(problemCodes(report)).toContain('cluster-state');
      expect(report.nodes.find((node) => node.address === address)).toMatchObject({ status: 'down', latencyMs: null });
      // The two survivors answer PING but take no writes while the cluster is down.
      const survivors = report.nodes.filter((node) => node.address !== address);
      expect(survivors).toHaveLength(2);
      for (const node of survivors) {
        expect(node.latencyMs).not.toBeNull();
        expect(node.writable).toBe(false);
      }
      expect(rejections.list).toEqual([]);
    } finally {
      redis.disconnect();
      await cluster.stop();
    }
  });
});

describe('parseClusterNodes', () => {
  it('reads ids, addresses, roles, flags, links and slot counts', () => {
    const text = [
      'a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460',
      'b2 127.0.0.1:7001@17001,host-b master,fail - 1 1 2 disconnected 5461-10922 [12000->-c3]',
      'c3 127.0.0.1:7002@17002 slave a1 0 2 3 connected',
    ].join('\n');
    expect(parseClusterNodes(text)).toEqual([
      {
        id: 'a1',
        address: '127.0.0.1:7000',
        flags: ['myself', 'master'],
        role: 'master',
        masterId: undefined,
        linkState: 'connected',
        slotCount: 5461,
      },
      {
        id: 'b2',
        address: '127.0.0.1:7001',
        flags: ['master', 'fail'],
        role: 'master',
        masterId: undefined,
        linkState: 'disconnected',
        slotCount: 5462,
      },
      {
        id: 'c3',
        address: '127.0.0.1:7002',
        flags: ['slave'],
        role: 'replica',
        masterId: 'a1',
        linkState: 'connected',
        slotCount: 0,
      },
    ]);
  });
});

describe('RedisHealth options', () => {
  const redis = createClient({ url: 'redis://127.0.0.1:1', redisOptions: { lazyConnect: true } });
  afterAll(() => redis.disconnect());

  it.each([
    [{ timeout: '5 parsecs' }, 'timeout'],
    [{ timeout: 0 }, 'timeout'],
    [{ memoryThreshold: 2 }, 'memoryThreshold'],
    [{ prefix: '' }, 'prefix'],
    [{ prefix: 'a{b}' }, 'prefix'],
    [{ timout: 100 }, 'timout'],
  ])('rejects %j naming the option', (options, option) => {
    expect(() => new RedisHealth({ redis, ...options } as never)).toThrow(InvalidOptionError);
    expect(() => new RedisHealth({ redis, ...options } as never)).toThrow(`"${option}" for RedisHealth`);
  });

  it('rejects a missing or foreign client', () => {
    expect(() => new RedisHealth({} as never)).toThrow(
      /"redis" for RedisHealth: received undefined; expected an ioredis Redis or Cluster/,
    );
    expect(() => new RedisHealth({ redis: { get() {} } } as never)).toThrow(/"redis"/);
  });
});
