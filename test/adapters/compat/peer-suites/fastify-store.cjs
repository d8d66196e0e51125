// Chooses the store @fastify/rate-limit builds when the app gives none (patched into its
// index.js by peer-suites.sh): PEER_STORE=local (its LocalStore, as shipped), redis (its
// RedisStore) or redscale (redscaleStore from the packed redscale). A store made for an app that
// passed no `redis` gets a client to PEER_REDIS_URL and a fresh key prefix, as each app gets a
// fresh LocalStore; an app that passed `redis` keeps its client.
'use strict';
const { randomUUID } = require('node:crypto');

let shared;
function sharedClient() {
  if (!shared) {
    const Redis = require('ioredis');
    // The suite's apps never close this client: the runner ends each file with --test-force-exit.
    shared = new Redis(process.env.PEER_REDIS_URL);
  }
  return shared;
}

module.exports = function chooseStore(settings, params, { LocalStore, RedisStore }) {
  const kind = process.env.PEER_STORE ?? 'local';
  if (kind === 'local') {
    return settings.redis
      ? new RedisStore(params.continueExceeding, params.exponentialBackoff, settings.redis, settings.nameSpace)
      : new LocalStore(params.continueExceeding, params.exponentialBackoff, settings.cache);
  }
  const redis = settings.redis ?? sharedClient();
  const prefix = settings.redis ? (settings.nameSpace ?? 'fastify-rate-limit-') : `frl-${randomUUID()}-`;
  if (kind === 'redis') return new RedisStore(params.continueExceeding, params.exponentialBackoff, redis, prefix);
  if (kind === 'redscale') {
    const { redscaleStore } = require('redscale/fastify');
    const Store = redscaleStore(redis, { prefix: prefix.replace(/-$/, '') });
    return new Store(params);
  }
  throw new Error(`PEER_STORE must be local, redis or redscale (got ${kind})`);
};
