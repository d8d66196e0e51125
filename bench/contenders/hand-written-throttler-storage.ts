import type { Redis } from 'ioredis';

/**
 * The hand-written NestJS ThrottlerStorage from ../shared/seeds/000 (task 2), as users write it
 * today: TTL, INCR, EXPIRE, TTL (and SETEX when over) as separate calls — 3 to 5 round trips,
 * racy, and a key that never expires if the process dies between INCR and EXPIRE. Kept as
 * written (minus the Nest decorators) so the benchmark compares against what it replaces.
 */
export class HandWrittenThrottlerStorage {
  private readonly prefix = 'throttle:';

  constructor(private readonly redis: Redis) {}

  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string) {
    const redisKey = `${this.prefix}${throttlerName}:${key}`;
    const blockKey = `${this.prefix}${throttlerName}:block:${key}`;
    const blockedTtl = await this.redis.ttl(blockKey);
    if (blockedTtl > 0) {
      return { totalHits: limit + 1, timeToExpire: ttl, isBlocked: true, timeToBlockExpire: blockedTtl * 1000 };
    }
    const hits = await this.redis.incr(redisKey);
    if (hits === 1) await this.redis.expire(redisKey, Math.ceil(ttl / 1000));
    const currentTtl = await this.redis.ttl(redisKey);
    if (hits > limit && blockDuration > 0) {
      await this.redis.setex(blockKey, Math.ceil(blockDuration / 1000), '1');
      return { totalHits: hits, timeToExpire: currentTtl * 1000, isBlocked: true, timeToBlockExpire: blockDuration };
    }
    return { totalHits: hits, timeToExpire: currentTtl * 1000, isBlocked: false, timeToBlockExpire: 0 };
  }
}
