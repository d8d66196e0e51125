import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { closeClient, createClient, InvalidOptionError, isCluster } from '../../src/index.js';
import { quiet, randomPrefix } from '../harness/context.js';
import { RedisServer, waitUntil } from '../harness/index.js';

const clients: Array<Redis | Cluster> = [];
function track<T extends Redis | Cluster>(client: T): T {
  clients.push(client);
  return client;
}
afterAll(() => {
  for (const client of clients) client.disconnect();
});

describe('createClient', () => {
  it('connects to a redis:// URL with fail-fast defaults', async () => {
    const redis = track(createClient(inject('redisUrl')));
    expect(redis).toBeInstanceOf(Redis);
    expect(redis.options).toMatchObject({
      commandTimeout: 1_000,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      enableAutoPipelining: false,
    });
    await expect(redis.ping()).resolves.toBe('PONG');
  });

  it('makes a Cluster from a list of nodes and routes keys of every slot', async () => {
    const nodes = inject('clusterNodes').map(({ host, port }) => `redis://${host}:${port}`);
    const cluster = track(createClient(nodes));
    expect(cluster).toBeInstanceOf(Cluster);
    expect(isCluster(cluster)).toBe(true);
    const prefix = randomPrefix('client');
    const keys = Array.from({ length: 30 }, (_, index) => `${prefix}:${index}`);
    await Promise.all(keys.map((key) => cluster.set(key, key, 'PX', 10_000)));
    expect(await Promise.all(keys.map((key) => cluster.get(key)))).toEqual(keys);
    // 30 keys spread over 16384 slots land on every one of the 3 masters.
    const perMaster = await Promise.all(
      cluster
        .nodes('master')
        .map(async (node) => (await node.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 1000))[1].length),
    );
    expect(perMaster).toHaveLength(3);
    for (const count of perMaster) expect(count).toBeGreaterThan(0);
    await Promise.all(keys.map((key) => cluster.unlink(key)));
  });

  it('accepts one URL as a Cluster startup node with cluster: true', async () => {
    const [first] = inject('clusterNodes');
    const cluster = track(createClient({ url: `redis://${first?.host}:${first?.port}`, cluster: true }));
    expect(isCluster(cluster)).toBe(true);
    await expect(cluster.set(`${randomPrefix('one')}:k`, '1', 'PX', 1_000)).resolves.toBe('OK');
  });

  it('hands connection errors to onError instead of leaving them unhandled', async () => {
    const errors: Error[] = [];
    const redis = track(
      createClient({ url: 'redis://127.0.0.1:1', connectTimeout: 200, onError: (error) => errors.push(error) }),
    );
    await expect(redis.ping()).rejects.toThrow();
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]?.message).toMatch(/ECONNREFUSED/);
  });

  it('fails a command within its timeout when Redis is down, and recovers after a restart', async () => {
    const server = await RedisServer.start();
    try {
      const redis = track(createClient({ url: server.url, commandTimeout: 300, onError: quiet }));
      await redis.ping();
      await server.kill();
      const started = Date.now();
      await expect(redis.get('k')).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(600);
      await server.restart();
      await expect(redis.ping()).resolves.toBe('PONG');
    } finally {
      await server.dispose();
    }
  });

  it('speaks TLS to a rediss:// server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'redscale-tls-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const server = await RedisServer.start({ tls: { certFile: cert, keyFile: key, caFile: cert } });
    try {
      expect(server.url.startsWith('rediss://')).toBe(true);
      const redis = track(createClient({ url: server.url, redisOptions: { tls: { ca: readFileSync(cert) } } }));
      await expect(redis.ping()).resolves.toBe('PONG');
      const plain = track(
        createClient({
          url: server.url.replace('rediss', 'redis'),
          commandTimeout: 300,
          connectTimeout: 300,
          onError: quiet,
        }),
      );
      await expect(plain.ping()).rejects.toThrow();
    } finally {
      await server.dispose();
    }
  });

  it.each([
    [{ url: 'localhost:6379' }, 'url', 'a URL starting with redis:// or rediss://'],
    [{ commandTimeout: '5 parsecs' }, 'commandTimeout', 'a duration'],
    [{ nodes: [] }, 'nodes', 'at least 1 item'],
    [{ nodes: [{ host: 'h', port: 0 }] }, 'nodes[0].port', 'at least 1'],
    [{ maxRetriesPerRequest: -1 }, 'maxRetriesPerRequest', 'at least 0'],
    [{ comandTimeout: 5 }, 'comandTimeout', 'commandTimeout'],
    [{ onError: 'log' }, 'onError', 'a function'],
  ])('rejects %j naming the option', (options, option, expected) => {
    let error: unknown;
    try {
      createClient(options as never);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).option).toBe(option);
    expect((error as Error).message).toContain('createClient()');
    expect((error as Error).message).toContain(expected);
  });
});

describe('closeClient', () => {
  it('closes a connected client, and does not hang on one that is between reconnections', async () => {
    const server = await RedisServer.start();
    try {
      const connected = createClient({ url: server.url, onError: quiet });
      await connected.ping();
      await closeClient(connected);
      expect(connected.status).toBe('end');

      const reconnecting = createClient({ url: server.url, onError: quiet });
      await reconnecting.ping();
      await server.kill();
      await waitUntil('the client to be reconnecting', async () => reconnecting.status === 'reconnecting', 2_000);
      const started = performance.now();
      await closeClient(reconnecting, 300);
      expect(performance.now() - started).toBeLessThan(1_000);
      await server.restart();
      await new Promise((resolve) => setTimeout(resolve, 300));
      // It stays closed: no reconnection after the server is back.
      expect(['end', 'reconnecting', 'close']).toContain(reconnecting.status);
      await expect(reconnecting.ping()).rejects.toThrow();
    } finally {
      await server.dispose();
    }
  });
});
