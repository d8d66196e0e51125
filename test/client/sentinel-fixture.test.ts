import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { RedisSentinelSet } from '../harness/sentinel.js';

describe('RedisSentinelSet', () => {
  it('starts a primary, a replica and three sentinels, and fails over', async () => {
    const set = await RedisSentinelSet.start();
    try {
      expect(await set.currentPrimaryPort()).toBe(set.primary.port);
      const client = new Redis({ sentinels: set.sentinels, name: set.name, maxRetriesPerRequest: 3 });
      client.on('error', () => {});
      await client.set('rs-test:sentinel', '1');
      const port = await set.failover();
      expect(port).toBe(set.replica.port);
      await expect(client.set('rs-test:sentinel', '2')).resolves.toBe('OK');
      client.disconnect();
    } finally {
      await set.stop();
    }
  }, 60_000);
});
