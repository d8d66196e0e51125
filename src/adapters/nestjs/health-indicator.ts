import { Inject, Injectable } from '@nestjs/common';
import type { HealthIndicatorResult } from '@nestjs/terminus';
import { RedisHealth } from '../../health/redis-health.js';

/**
 * A @nestjs/terminus (v11+) indicator for Redis, built on {@link RedisHealth}: `down` as soon as
 * the report is (within the health check's timeout — no 10 s hang on a dead Redis), `up` for up
 * and degraded, with the report's essentials as details.
 *
 * ```ts
 * @Get('ready') @HealthCheck()
 * ready() { return this.health.check([() => this.redis.isHealthy('redis')]) }
 * ```
 */
@Injectable()
export class RedisHealthIndicator {
  readonly #health: RedisHealth;

  constructor(@Inject(RedisHealth) health: RedisHealth) {
    this.#health = health;
  }

  async isHealthy<Key extends string = 'redis'>(key: Key = 'redis' as Key): Promise<HealthIndicatorResult<Key>> {
    // Loaded on first use, so redscale/nestjs works without @nestjs/terminus installed.
    const { HealthIndicatorService } = await import('@nestjs/terminus');
    const indicator = new HealthIndicatorService().check(key);
    const report = await this.#health.check();
    const details = {
      redis: report.status,
      mode: report.mode,
      latencyMs: report.latencyMs,
      problems: report.problems.map((problem) => `${problem.severity} ${problem.code}: ${problem.message}`),
    };
    return report.status === 'down' ? indicator.down(details) : indicator.up(details);
  }
}
