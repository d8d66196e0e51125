import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Cache, type CacheOptions, createClient, type RedisLike } from '../../src/index.js';
import { connect, deletePrefix, quiet, randomPrefix, type Topology } from '../harness/context.js';

/** One "instance" of a service: its own Redis client and Cache, sharing a prefix with its peers. */
export interface Instance {
  redis: RedisLike;
  cache: Cache;
}

/** Creates instances that share one namespace, and cleans them (and their keys) up. */
export function instances(label: string, topology: Topology = 'standalone') {
  const made: Instance[] = [];
  const servers: Server[] = [];
  let prefix = randomPrefix(label);
  return {
    get prefix() {
      return prefix;
    },
    /** A fresh namespace for the next test's instances. */
    renew() {
      prefix = randomPrefix(label);
    },
    async make(options: Partial<CacheOptions> & { url?: string } = {}): Promise<Instance> {
      const { url, ...cacheOptions } = options;
      const redis = url ? createClient({ url, onError: quiet }) : connect(topology);
      const cache = new Cache({ redis, prefix, ...cacheOptions });
      made.push({ redis, cache });
      if (!url) await cache.whenReady();
      return { redis, cache };
    },
    /** Listens on a free port; closed in `dispose`. */
    async listen(listener: RequestListener): Promise<string> {
      const server = createServer(listener);
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    async dispose() {
      for (const server of servers.splice(0)) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
      const first = made[0];
      for (const { cache, redis } of made.splice(0)) {
        await cache.close();
        if (redis !== first?.redis) redis.disconnect();
      }
      if (first) {
        await deletePrefix(first.redis, prefix).catch(() => 0);
        first.redis.disconnect();
      }
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** GETs `url` with `fetch`, resolving status, headers and the raw body. */
export async function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const response = await fetch(url, { method, headers });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body, text: body.toString() };
}
