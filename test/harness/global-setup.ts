import type { TestProject } from 'vitest/node';
import { findOrStartRedis, startCluster } from './find-redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared standalone Redis for this run (REDIS_URL, or one the harness started). */
    redisUrl: string;
    /** Startup nodes of the shared 3-master Cluster the harness started. */
    clusterNodes: Array<{ host: string; port: number }>;
  }
}

/**
 * Starts (or finds) the Redis and the 3-master Cluster shared by the whole test run, once. Tests
 * that kill, restart or reconfigure a server start their own instead.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [redis, cluster] = await Promise.all([findOrStartRedis(), startCluster()]);
  project.provide('redisUrl', redis.url);
  project.provide('clusterNodes', cluster.nodes);
  return async () => {
    await Promise.all([redis.stop(), cluster.stop()]);
  };
}
