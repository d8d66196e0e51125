import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisCluster } from './cluster.js';
import { RedisServer } from './redis-server.js';

/** A Redis to use, and how to let go of it. */
export interface FoundRedis {
  url: string;
  /** Where it came from: the environment, a process we started, or a container. */
  source: 'REDIS_URL' | 'redis-server' | 'testcontainers';
  /** Stops what was started; does nothing for `REDIS_URL`. */
  stop(): Promise<void>;
}

const HOW_TO_GET_REDIS = [
  'redscale needs a Redis 7 server for its tests, examples and benchmarks, and found none:',
  '  - set REDIS_URL=redis://host:port to use a running server (it is never flushed; keys use a random prefix), or',
  '  - install redis-server on PATH (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), or',
  '  - start a Docker engine, and `testcontainers` will run redis:7-alpine.',
].join('\n');

/** Whether `redis-server` (and `redis-cli`, for Clusters) can be found on PATH. */
export function onPath(binary: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, binary)));
}

/**
 * Finds or starts a Redis, in this order: `REDIS_URL`; a throwaway `redis-server` from PATH on a
 * free port; a `redis:7-alpine` container through testcontainers when a Docker engine answers;
 * else an error that says how to get one.
 */
export async function findOrStartRedis(env: NodeJS.ProcessEnv = process.env): Promise<FoundRedis> {
  const fromEnv = env.REDIS_URL;
  if (fromEnv) {
    await pingUrl(fromEnv);
    return { url: fromEnv, source: 'REDIS_URL', stop: async () => {} };
  }
  if (onPath('redis-server', env)) {
    const server = await RedisServer.start();
    return { url: server.url, source: 'redis-server', stop: () => server.dispose() };
  }
  const container = await tryTestcontainers(env);
  if (container) return container;
  throw new Error(HOW_TO_GET_REDIS);
}

/**
 * PINGs the server at `url` exactly as a client given that URL would reach it (host, port,
 * user, password, database and TLS), or throws an error that says what failed.
 */
export async function pingUrl(url: string, timeoutMs = 2_000): Promise<void> {
  if (!/^rediss?:\/\//.test(url)) {
    throw new Error(`REDIS_URL must start with redis:// or rediss:// (got ${JSON.stringify(url)})`);
  }
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let lastError: unknown;
  client.on('error', (error) => {
    lastError = error;
  });
  try {
    await client.connect();
    const reply = await client.ping();
    if (reply !== 'PONG') throw new Error(`PING answered ${JSON.stringify(reply)}`);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const detail = lastError instanceof Error && lastError.message !== reason ? ` (${lastError.message})` : '';
    throw new Error(`REDIS_URL is set to ${redact(url)} but that server does not answer PING: ${reason}${detail}`);
  } finally {
    client.disconnect();
  }
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/** Starts a 3-master Cluster from `redis-server` on PATH, or explains what is missing. */
export async function startCluster(options?: { nodeTimeout?: number }): Promise<RedisCluster> {
  if (!onPath('redis-server') || !onPath('redis-cli')) {
    throw new Error(
      'redscale starts a real 3-master Redis Cluster for its Cluster tests and needs redis-server and redis-cli on PATH ' +
        '(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis).',
    );
  }
  return RedisCluster.start(options);
}

async function tryTestcontainers(env: NodeJS.ProcessEnv): Promise<FoundRedis | undefined> {
  if (!dockerAnswers(env)) return undefined;
  try {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('redis:7-alpine')
      .withExposedPorts(6379)
      .withCommand(['redis-server', '--save', '', '--appendonly', 'no'])
      .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
      .start();
    return {
      url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
      source: 'testcontainers',
      stop: async () => {
        await container.stop();
      },
    };
  } catch (error) {
    throw new Error(
      `a Docker engine answered but starting redis:7-alpine failed: ${String(error)}\n${HOW_TO_GET_REDIS}`,
    );
  }
}

function dockerAnswers(env: NodeJS.ProcessEnv): boolean {
  if (!onPath('docker', env)) return false;
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore', timeout: 5_000, env });
    return true;
  } catch {
    return false;
  }
}
