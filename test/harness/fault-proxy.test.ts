import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ClusterProxies, FaultProxy } from './fault-proxy.js';

const opened: Array<{ close(): Promise<void> } | Redis | Cluster> = [];
afterEach(async () => {
  for (const item of opened.splice(0)) {
    if (item instanceof Redis || item instanceof Cluster) item.disconnect();
    else await item.close();
  }
});

async function through(proxy: FaultProxy, options: Record<string, unknown> = {}): Promise<Redis> {
  const client = new Redis(proxy.url, { maxRetriesPerRequest: 1, ...options });
  client.on('error', () => {});
  opened.push(client);
  await client.ping();
  return client;
}

describe('FaultProxy', () => {
  it('passes commands through, and delays replies by the given time', async () => {
    const proxy = await FaultProxy.start(inject('redisUrl'));
    opened.push(proxy);
    const client = await through(proxy);
    await expect(client.ping()).resolves.toBe('PONG');
    proxy.set({ kind: 'delay', ms: 150 });
    const started = Date.now();
    await client.ping();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    proxy.pass();
    const again = Date.now();
    await client.ping();
    expect(Date.now() - again).toBeLessThan(100);
  });

  it('holds commands while paused, keeping the socket open, and runs them when resumed', async () => {
    const proxy = await FaultProxy.start(inject('redisUrl'));
    opened.push(proxy);
    const client = await through(proxy);
    const key = `rs-test:proxy:${Math.random()}`;
    proxy.set({ kind: 'pause' });
    const late = client.incr(key);
    const settled = await Promise.race([late.then(() => 'answered'), sleep(200).then(() => 'pending')]);
    expect(settled).toBe('pending');
    expect(client.status).toBe('ready');
    proxy.pass();
    await expect(late).resolves.toBe(1);
    await client.del(key);
  });

  it('drops everything on a blackholed link, and only on that link', async () => {
    const proxy = await FaultProxy.start(inject('redisUrl'));
    opened.push(proxy);
    const a = await through(proxy);
    const b = await through(proxy);
    await a.client('SETNAME', 'link-a');
    const linkA = proxy.openLinks.find((link) => link.sent('client'));
    expect(linkA).toBeDefined();
    linkA?.set({ kind: 'blackhole' });
    const lost = a.ping();
    lost.catch(() => {});
    await expect(b.ping()).resolves.toBe('PONG');
    const settled = await Promise.race([lost.then(() => 'answered'), sleep(200).then(() => 'pending')]);
    expect(settled).toBe('pending');
    linkA?.set({ kind: 'pass' });
    const stillLost = await Promise.race([lost.then(() => 'answered'), sleep(200).then(() => 'pending')]);
    expect(stillLost).toBe('pending');
  });

  it('resets every connection, and refuses new ones while refusing', async () => {
    const proxy = await FaultProxy.start(inject('redisUrl'));
    opened.push(proxy);
    const client = await through(proxy, { retryStrategy: () => 50 });
    const closed = new Promise((resolve) => client.once('close', resolve));
    proxy.refuse(true);
    proxy.resetAll();
    await closed;
    await expect(client.ping()).rejects.toThrow();
    proxy.refuse(false);
    await new Promise((resolve) => client.once('ready', resolve));
    await expect(client.ping()).resolves.toBe('PONG');
    expect(proxy.links.length).toBeGreaterThanOrEqual(2);
  });
});

describe('ClusterProxies', () => {
  it('routes a Cluster client through one proxy per node', async () => {
    const proxies = await ClusterProxies.start(inject('clusterNodes'));
    opened.push(proxies);
    const cluster = new Cluster(proxies.nodes, { natMap: proxies.natMap });
    cluster.on('error', () => {});
    opened.push(cluster);
    const prefix = `rs-test:proxy:${Math.random()}`;
    for (let i = 0; i < 30; i++) await cluster.set(`${prefix}:${i}`, i, 'PX', 10_000);
    const used = proxies.all.filter((proxy) => proxy.links.some((link) => link.sent('set')));
    expect(used.length).toBe(3);
    for (let i = 0; i < 30; i++) await cluster.del(`${prefix}:${i}`);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
