import { inject } from 'vitest';
import { type CreateClientOptions, createClient, type RedisLike } from '../../src/index.js';
import { quiet, type Topology } from '../harness/context.js';
import { ClusterProxies, FaultProxy, type LinkMode } from '../harness/index.js';

/** A client whose every link runs through fault proxies, and a direct client to look at Redis. */
export interface Proxied {
  /** Goes through the proxies. */
  redis: RedisLike;
  /** Bypasses them, to see what Redis holds whatever the link does. */
  direct: RedisLike;
  /** Sets the mode of every link (every Cluster node's). */
  set(mode: LinkMode): void;
  /** Resets every open link: the client reconnects and resends what was unanswered. */
  resetAll(): void;
  close(): Promise<void>;
}

/** {@link Proxied} on the shared standalone Redis or the shared Cluster. */
export async function proxied(topology: Topology, options: CreateClientOptions = {}): Promise<Proxied> {
  if (topology === 'cluster') {
    const nodes = inject('clusterNodes');
    const proxies = await ClusterProxies.start(nodes);
    const redis = createClient({
      ...options,
      nodes: proxies.nodes,
      clusterOptions: { ...options.clusterOptions, natMap: proxies.natMap },
      onError: quiet,
    });
    const direct = createClient({ ...options, nodes, onError: quiet });
    await Promise.all([redis.ping(), direct.ping()]);
    return {
      redis,
      direct,
      set: (mode) => {
        for (const proxy of proxies.all) proxy.set(mode);
      },
      resetAll: () => {
        for (const proxy of proxies.all) proxy.resetAll();
      },
      close: async () => {
        redis.disconnect();
        direct.disconnect();
        await proxies.close();
      },
    };
  }
  const proxy = await FaultProxy.start(inject('redisUrl'));
  const redis = createClient({ ...options, url: proxy.url, onError: quiet });
  const direct = createClient({ ...options, url: inject('redisUrl'), onError: quiet });
  await Promise.all([redis.ping(), direct.ping()]);
  return {
    redis,
    direct,
    set: (mode) => proxy.set(mode),
    resetAll: () => proxy.resetAll(),
    close: async () => {
      redis.disconnect();
      direct.disconnect();
      await proxy.close();
    },
  };
}
