import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, InvalidOptionError } from '../../src/index.js';
import { quiet, randomPrefix } from '../harness/context.js';
import { RedisSentinelSet } from '../harness/sentinel.js';

describe('createClient on Sentinel', () => {
  let set: RedisSentinelSet;
  const clients: Redis[] = [];
  beforeAll(async () => {
    set = await RedisSentinelSet.start();
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await set?.stop();
  });

  it('finds the primary through the sentinels, from options or a redis-sentinel:// URL', async () => {
    const fromOptions = createClient({ sentinels: set.sentinels, name: set.name, onError: quiet });
    const fromUrl = createClient(
      `redis-sentinel://${set.sentinels.map(({ host, port }) => `${host}:${port}`).join(',')}/0#${set.name}`,
    );
    fromUrl.on('error', quiet);
    clients.push(fromOptions, fromUrl);
    const key = `${randomPrefix('sentinel')}:k`;
    await fromOptions.set(key, 'a', 'PX', 60_000);
    await expect(fromUrl.get(key)).resolves.toBe('a');
    // Both talk to the primary: the server answering is the one the sentinels name.
    const primary = await set.currentPrimaryPort();
    expect(fromOptions.options.port === primary || (await fromOptions.role())[0] === 'master').toBe(true);
    expect(fromOptions.options).toMatchObject({ commandTimeout: 1_000, maxRetriesPerRequest: 1, name: set.name });
  });

  it('follows a failover to the promoted replica', async () => {
    const redis = createClient({ sentinels: set.sentinels, name: set.name, onError: quiet });
    clients.push(redis);
    const key = `${randomPrefix('failover')}:k`;
    await redis.set(key, 'before', 'PX', 60_000);
    const oldPrimary = await set.currentPrimaryPort();
    const newPrimary = await set.failover();
    expect(newPrimary).not.toBe(oldPrimary);
    // Writes succeed again on the new primary within a few seconds.
    const started = performance.now();
    for (;;) {
      try {
        await redis.set(key, 'after', 'PX', 60_000);
        break;
      } catch (error) {
        if (performance.now() - started > 15_000) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    await expect(redis.get(key)).resolves.toBe('after');
    expect((await redis.role())[0]).toBe('master');
  }, 60_000);

  it('refuses a name without sentinels, and Sentinel mixed with Cluster', () => {
    expect(() => createClient({ name: 'x' })).toThrow(InvalidOptionError);
    expect(() => createClient({ sentinels: set.sentinels })).toThrow(/"name"/);
    expect(() => createClient({ sentinels: set.sentinels, name: 'x', cluster: true })).toThrow(/not both/);
    expect(() => createClient('redis-sentinel://127.0.0.1:26379')).toThrow(/redis-sentinel/);
  });
});
