export { closeClient } from './close.js';
export {
  addressOf,
  groupBySlot,
  hashTagOnNode,
  keySlot,
  mastersOf,
  type ScanOptions,
  scanEveryMaster,
} from './cluster.js';
export { type CreateClientOptions, createClient } from './create-client.js';
export { isCluster, type RedisLike } from './types.js';
