import { Agent, createServer, request, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, gracefulShutdown, InvalidOptionError, RedisHealth } from '../../src/index.js';
import { connect, quiet, unhandledRejections } from '../harness/context.js';
import { freePort } from '../harness/index.js';

const rejections = unhandledRejections();

/** A server whose /slow?ms=N answers after N ms; listening on a free port. */
async function listen(): Promise<{ server: Server; port: number }> {
  const server = createServer(async (req, res) => {
    const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
    if (ms) await sleep(ms);
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}

function get(port: number, path: string, agent?: Agent) {
  return new Promise<{ status?: number; connection?: string; error?: string }>((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: agent ?? false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
    req.end();
  });
}

describe('gracefulShutdown', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    expect(rejections.list).toEqual([]);
  });

  it('RedisHealth.drain() turns readiness to 503 at once, without asking Redis; liveness stays 200', async () => {
    const redis = createClient({ url: `redis://127.0.0.1:${await freePort()}`, onError: quiet, connectTimeout: 200 });
    cleanups.push(() => redis.disconnect());
    const health = new RedisHealth({ redis, timeout: '300ms' });
    expect(health.draining).toBe(false);
    health.drain();
    const started = performance.now();
    const { statusCode, body } = await health.readiness();
    // Asking the unreachable Redis would take its 300 ms timeout.
    expect(performance.now() - started).toBeLessThan(250);
    expect(statusCode).toBe(503);
    expect(body).toMatchObject({ status: 'down', problems: [{ code: 'draining', severity: 'down' }], nodes: [] });
    expect(health.draining).toBe(true);
    expect(health.liveness().statusCode).toBe(200);
  });

  it('answers with Connection: close once draining, and closes idle keep-alive connections with the listener', async () => {
    const { server, port } = await listen();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    expect((await get(port, '/', agent)).connection).toBe('keep-alive');
    const shutdown = gracefulShutdown({ server, drainDelay: 300, requestTimeout: 5_000, signals: [], exit: false });
    const result = shutdown.shutdown('test');
    expect(shutdown.draining).toBe(true);
    await sleep(50);
    // During the drain delay: still served, but told to go elsewhere next time.
    expect(await get(port, '/', agent)).toMatchObject({ status: 200, connection: 'close' });
    expect(await get(port, '/')).toMatchObject({ status: 200, connection: 'close' });
    // A keep-alive connection opened before and left idle does not hold the shutdown up.
    expect(await result).toMatchObject({ code: 0, cutRequests: 0, forced: false, reason: 'test' });
    expect((await result).durationMs).toBeLessThan(2_000);
    expect((await get(port, '/')).error).toBe('ECONNREFUSED');
  });

  it('does not wait for a keep-alive connection that turns idle after the listener closed', async () => {
    const { server, port } = await listen();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    // In flight before the shutdown was installed: its response keeps the connection alive.
    const before = get(port, '/slow?ms=300', agent);
    await sleep(50);
    const shutdown = gracefulShutdown({ server, drainDelay: 0, requestTimeout: 8_000, signals: [], exit: false });
    const result = await shutdown.shutdown();
    expect(await before).toMatchObject({ status: 200, connection: 'keep-alive' });
    // Node would keep the idle connection for keepAliveTimeout (5 s) and close() would wait.
    expect(result).toMatchObject({ code: 0, cutRequests: 0 });
    expect(result.durationMs).toBeLessThan(2_000);
  });

  it('closes what it was given in order (function, close, stop, release), then QUITs Redis; a failure makes the code 1', async () => {
    const redis = connect('standalone');
    await redis.ping();
    const order: string[] = [];
    const redisReady = () => redis.status === 'ready';
    const shutdown = gracefulShutdown({
      drainDelay: 0,
      signals: [],
      exit: false,
      closeTimeout: 200,
      close: [
        () => {
          order.push(`function (redis ready: ${redisReady()})`);
        },
        { close: async () => order.push('close') },
        {
          stop: () => {
            order.push('stop');
            throw new Error('stop failed');
          },
        },
        { release: () => new Promise(() => order.push('release (never settles)')) },
        { close: () => order.push(`last (redis ready: ${redisReady()})`) },
      ],
      redis,
    });
    const result = await shutdown.shutdown();
    expect(order).toEqual([
      'function (redis ready: true)',
      'close',
      'stop',
      'release (never settles)',
      'last (redis ready: true)',
    ]);
    expect(redis.status).toBe('end');
    expect(result.code).toBe(1);
    expect(result.failures).toEqual([
      { step: 'close[2]', error: 'stop failed' },
      { step: 'close[3]', error: 'did not finish within 200 ms' },
    ]);
  });

  it('gives up at the hard deadline with code 1', async () => {
    const shutdown = gracefulShutdown({
      drainDelay: 0,
      requestTimeout: 100,
      forceAfter: 400,
      closeTimeout: 10_000,
      close: [() => new Promise(() => {})],
      signals: [],
      exit: false,
    });
    const started = performance.now();
    const result = await shutdown.shutdown();
    expect(result).toMatchObject({ code: 1, forced: true });
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('starts on its signal, once; dispose() removes its handlers', async () => {
    const before = process.listenerCount('SIGUSR2');
    const shutdown = gracefulShutdown({ drainDelay: 0, signals: ['SIGUSR2'], exit: false });
    expect(process.listenerCount('SIGUSR2')).toBe(before + 1);
    process.kill(process.pid, 'SIGUSR2');
    await sleep(50);
    expect(shutdown.draining).toBe(true);
    const result = await shutdown.shutdown('ignored: already started');
    expect(result.reason).toBe('SIGUSR2');
    expect(process.listenerCount('SIGUSR2')).toBe(before);
  });

  it('validates its options, naming the one at fault', () => {
    expect(() => gracefulShutdown({ drainDelay: '20s', requestTimeout: '20s', forceAfter: '30s' })).toThrow(
      /"forceAfter".*later than drainDelay \+ requestTimeout/,
    );
    expect(() => gracefulShutdown({ server: {} as never })).toThrow(InvalidOptionError);
    expect(() => gracefulShutdown({ server: {} as never })).toThrow(/"server"/);
    expect(() => gracefulShutdown({ close: [42 as never] })).toThrow(
      /"close\[0\]".*close\(\), stop\(\) or release\(\)/,
    );
    expect(() => gracefulShutdown({ signals: ['TERM' as never] })).toThrow(/"signals\[0\]"/);
  });
});
