import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createClient, fixedWindow, RateLimiter, type RedscaleError } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { freePort, RedisServer } from '../harness/index.js';

/**
 * A demoted primary (now a replica: every write answers READONLY). createClient reconnects on
 * READONLY so that, behind a DNS endpoint, the next command reaches the new primary; ioredis asks
 * its `reconnectOnError` only about an error that is a command's whole reply. A batched script
 * call decides identities under pcall, and must still fail as a whole on READONLY (it is no
 * identity's own error): every script call of a burst reaches `reconnectOnError`.
 */
let server: RedisServer;
let redis: Redis;
beforeAll(async () => {
  server = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(await freePort())] });
  redis = createClient({ url: server.url }) as Redis;
  await redis.ping();
});
afterAll(async () => {
  redis.disconnect();
  await server.dispose();
});

it('every batched script call failing with READONLY reaches reconnectOnError, as READONLY', async () => {
  const original = redis.options.reconnectOnError;
  const consulted: string[] = [];
  // Record only: a reconnection in the middle of the burst would change what is measured.
  redis.options.reconnectOnError = (error: Error) => {
    consulted.push(error.message);
    return false;
  };
  try {
    const errors: RedscaleError[] = [];
    const limiter = new RateLimiter({
      redis,
      prefix: 'rs-test:batch-readonly',
      limits: [fixedWindow({ limit: 100, window: '1m' })],
      localDenyCache: false,
      circuitBreaker: false,
      timeout: '5s',
      onError: (error) => errors.push(error),
    });
    await limiter.consume('warm'); // teaches the server the script (EVAL)
    consulted.length = 0;
    errors.length = 0;
    const ids = Array.from({ length: 40 }, (_, i) => `id-${i}`);
    const log = await countCommands(() => Promise.all(ids.map((id) => limiter.consume(id))));
    const scriptCalls = log.names.filter((name) => name === 'evalsha' || name === 'eval').length;
    expect(errors.length).toBe(ids.length);
    expect(scriptCalls).toBeLessThan(ids.length); // some calls carried several identities
    expect(consulted.length).toBe(scriptCalls);
    for (const message of consulted) expect(message).toMatch(/^READONLY/);
  } finally {
    redis.options.reconnectOnError = original;
  }
});
