export { RedisCluster, type RedisClusterOptions } from './cluster.js';
export { ClusterProxies, FaultProxy, type LinkMode, ProxyLink } from './fault-proxy.js';
export { type FoundRedis, findOrStartRedis, onPath, startCluster } from './find-redis.js';
export { freePort } from './ports.js';
export { RedisServer, type RedisServerOptions } from './redis-server.js';
export { rawCommand, waitUntil } from './resp.js';
