import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { findOrStartRedis, RedisServer } from './harness/index.js';

describe('findOrStartRedis', () => {
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    await Promise.all(stops.map((stop) => stop()));
  });

  it('starts a throwaway redis-server from PATH when REDIS_URL is not set', async () => {
    const found = await findOrStartRedis({ PATH: process.env.PATH });
    stops.push(found.stop);
    expect(found.source).toBe('redis-server');
    const client = new Redis(found.url);
    await expect(client.ping()).resolves.toBe('PONG');
    client.disconnect();
  });

  it('uses REDIS_URL first, and never stops a server it did not start', async () => {
    const server = await RedisServer.start();
    stops.push(() => server.dispose());
    const found = await findOrStartRedis({ PATH: process.env.PATH, REDIS_URL: server.url });
    expect(found).toMatchObject({ source: 'REDIS_URL', url: server.url });
    await found.stop();
    expect(server.running).toBe(true);
  });

  it('says so when REDIS_URL points at nothing', async () => {
    await expect(findOrStartRedis({ REDIS_URL: 'redis://127.0.0.1:1' })).rejects.toThrow(
      /REDIS_URL is set .* does not answer PING/,
    );
  });

  it('checks REDIS_URL as given: its host, not only its port', async () => {
    const server = await RedisServer.start();
    stops.push(() => server.dispose());
    await expect(
      findOrStartRedis({ PATH: process.env.PATH, REDIS_URL: `redis://no-such-host.invalid:${server.port}` }),
    ).rejects.toThrow(/REDIS_URL is set .*no-such-host\.invalid.* does not answer PING/);
  });

  it('checks REDIS_URL as given: its password, which messages never print', async () => {
    const server = await RedisServer.start({ args: ['--requirepass', 's3cret'] });
    stops.push(() => server.dispose());
    const wrong = await findOrStartRedis({ REDIS_URL: `redis://:wrong@127.0.0.1:${server.port}` }).catch(
      (error: Error) => error,
    );
    expect(wrong).toBeInstanceOf(Error);
    expect((wrong as Error).message).toMatch(/does not answer PING: .*(WRONGPASS|invalid password)/i);
    expect((wrong as Error).message).not.toContain('wrong@');
    const right = await findOrStartRedis({ REDIS_URL: `redis://:s3cret@127.0.0.1:${server.port}` });
    expect(right.source).toBe('REDIS_URL');
  });

  it('explains how to get a Redis when there is none to find', async () => {
    // No redis-server and no Docker engine on this PATH.
    await expect(findOrStartRedis({ PATH: '/nonexistent' })).rejects.toThrow(
      /set REDIS_URL=.*\n.*install redis-server on PATH.*\n.*Docker engine/,
    );
  });
});

describe('RedisServer', () => {
  it('can be killed and restarted on the same port', async () => {
    const server = await RedisServer.start();
    try {
      const port = server.port;
      await server.kill();
      expect(server.running).toBe(false);
      await expect(server.command('PING')).rejects.toThrow(/ECONNREFUSED/);
      await server.restart();
      expect(server.port).toBe(port);
      expect(await server.command('PING')).toBe('+PONG\r\n');
    } finally {
      await server.dispose();
    }
  });
});
