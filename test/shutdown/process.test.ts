import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/index.js';
import { quiet } from '../harness/context.js';
import { RedisServer } from '../harness/index.js';
import { type Child, startFixture } from './child.js';

/** One GET on a fresh connection: the status and body, or the error code (ECONNREFUSED, ECONNRESET…). */
function get(port: number, path: string): Promise<{ status?: number; body?: string; error?: string; at: number }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode, body, at: performance.now() }));
      res.on('error', (error: NodeJS.ErrnoException) =>
        resolve({ error: error.code ?? error.message, at: performance.now() }),
      );
    });
    req.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ error: error.code ?? error.message, at: performance.now() }),
    );
    req.end();
  });
}

async function quitCalls(redis: Redis): Promise<number> {
  const stats = await redis.info('commandstats');
  return Number(/cmdstat_quit:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

async function connections(redis: Redis): Promise<number> {
  return String(await redis.client('LIST'))
    .trim()
    .split('\n').length;
}

describe('gracefulShutdown in a real server process', () => {
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  const children: Child[] = [];
  afterAll(async () => {
    for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    admin?.disconnect();
    await server?.dispose();
  });

  async function startService(options: { drainDelay: number; requestTimeout: number; forceAfter: number }) {
    server ??= await RedisServer.start();
    admin ??= createClient({ url: server.url, onError: quiet });
    const prefix = `svc-${children.length}`;
    const service = startFixture('shutdown-server.ts', { url: server.url, prefix, ...options });
    children.push(service);
    const { port } = await service.waitForJson<{ port: number }>((line) => typeof line.port === 'number');
    return { service, port, prefix, redis: admin };
  }

  it('on SIGTERM: 503 before the listener closes, in-flight requests complete, new ones refused, clients QUIT, exit 0', async () => {
    const { service, port, prefix, redis } = await startService({
      drainDelay: 600,
      requestTimeout: 5_000,
      forceAfter: 10_000,
    });
    expect((await get(port, '/ready')).status).toBe(200);
    expect(await redis.exists(`${prefix}:lock:{nightly}`)).toBe(1);
    const quitsBefore = await quitCalls(redis);
    // Every connection but this test's own belongs to the service: two clients and the cache bus.
    const serviceConnections = (await connections(redis)) - 1;
    expect(serviceConnections).toBe(3);

    const inFlight = Array.from({ length: 3 }, () => get(port, '/slow?ms=1500'));
    await sleep(200);
    const signalledAt = performance.now();
    service.child.kill('SIGTERM');
    // Probe readiness on fresh connections until the process is gone.
    const probes: Array<Awaited<ReturnType<typeof get>>> = [];
    const exited = service.exited.then((exit) => ({ ...exit, at: performance.now() }));
    let done = false;
    void exited.then(() => {
      done = true;
    });
    while (!done) {
      probes.push(await get(port, '/ready'));
      await sleep(25);
    }
    const exit = await exited;
    const slow = await Promise.all(inFlight);

    expect(exit.code).toBe(0);
    // The requests in flight at the signal all completed.
    expect(slow.map((response) => [response.status, response.body])).toEqual([
      [200, 'done'],
      [200, 'done'],
      [200, 'done'],
    ]);
    expect(Math.min(...slow.map((response) => response.at))).toBeGreaterThan(signalledAt + 600);
    // Readiness turned 503 at once and stayed so, and only then were new connections refused.
    const firstUnready = probes.findIndex((probe) => probe.status === 503);
    const firstRefused = probes.findIndex((probe) => probe.error === 'ECONNREFUSED');
    expect(firstUnready).toBeGreaterThanOrEqual(0);
    expect(probes[firstUnready]!.at - signalledAt).toBeLessThan(400);
    expect(firstRefused).toBeGreaterThan(firstUnready);
    // After the first 503 a probe is answered 503 until the listener closes, then cannot connect.
    // A probe whose connection the kernel queued as the listener closed is reset, not refused.
    const outcomes = probes.slice(firstUnready).map((probe) => probe.status ?? probe.error);
    const firstFailed = outcomes.findIndex((outcome) => outcome !== 503);
    expect(firstFailed, outcomes.join()).toBeGreaterThan(0);
    expect(
      outcomes.slice(0, firstFailed).every((outcome) => outcome === 503),
      outcomes.join(),
    ).toBe(true);
    expect(
      outcomes.slice(firstFailed).every((outcome) => outcome === 'ECONNREFUSED' || outcome === 'ECONNRESET'),
      outcomes.join(),
    ).toBe(true);
    expect(outcomes.at(-1)).toBe('ECONNREFUSED');
    expect(JSON.parse(probes[firstUnready]!.body!).problems[0].code).toBe('draining');
    // The lock was released, the buffer consumer left its group, and every connection ended with QUIT.
    expect(await redis.exists(`${prefix}:lock:{nightly}`)).toBe(0);
    const stream = `${prefix}:buffer:{jobs/0}`;
    expect(await redis.xinfo('CONSUMERS', stream, 'redscale')).toEqual([]);
    expect((await quitCalls(redis)) - quitsBefore).toBe(serviceConnections);
    expect(await connections(redis)).toBe(1);
    expect(service.lines.some((line) => /shutdown clean .* exit code 0/.test(line))).toBe(true);
  }, 60_000);

  it('cuts a request that outlives requestTimeout, and the exit code says so', async () => {
    const { service, port } = await startService({ drainDelay: 100, requestTimeout: 500, forceAfter: 10_000 });
    const quick = get(port, '/slow?ms=300');
    const stuck = get(port, '/slow?ms=20000');
    await sleep(200);
    const signalledAt = performance.now();
    service.child.kill('SIGTERM');
    const exit = await service.exited;
    expect(exit.code).toBe(1);
    // Cut at drainDelay + requestTimeout, not left to the hard deadline (10 s).
    expect(performance.now() - signalledAt).toBeLessThan(5_000);
    expect(await quick).toMatchObject({ status: 200, body: 'done' });
    expect((await stuck).error).toMatch(/ECONNRESET|socket hang up/);
    expect(service.lines.some((line) => /1 request\(s\) outlived requestTimeout/.test(line))).toBe(true);
  }, 60_000);

  it('a second signal exits at once with code 1', async () => {
    const { service } = await startService({ drainDelay: 20_000, requestTimeout: 1_000, forceAfter: 30_000 });
    service.child.kill('SIGTERM');
    await sleep(300);
    const secondAt = performance.now();
    service.child.kill('SIGTERM');
    const exit = await service.exited;
    expect(exit.code).toBe(1);
    expect(performance.now() - secondAt).toBeLessThan(5_000);
  }, 60_000);
});
