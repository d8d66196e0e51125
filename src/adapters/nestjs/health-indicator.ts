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

  /** Nest injects the module's `RedisHealth`; outside Nest, pass one. */
  constructor(@Inject(RedisHealth) health: RedisHealth) {
    this.#health = health;
  }

  /** Checks Redis and answers in Terminus' indicator format, `{ [key]: { status, …details } }`. Never rejects. */
  async isHealthy<Key extends string = 'redis'>(key: Key = 'redis' as Key): Promise<HealthIndicatorResult<Key>> {
    const report = await this.#health.check();
    const details = {
      redis: report.status,
      mode: report.mode,
      latencyMs: report.latencyMs,
      problems: report.problems.map((problem) => `${problem.severity} ${problem.code}: ${problem.message}`),
    };
    // The shape Terminus' HealthIndicatorService.check(key).up()/down() builds (v11 and v12),
    // written out so nothing is imported from @nestjs/terminus at run time: no dynamic import()
    // for Jest's CommonJS runtime to refuse, and redscale/nestjs loads without Terminus installed.
    const status: 'up' | 'down' = report.status === 'down' ? 'down' : 'up';
    const result: HealthIndicatorResult<string> = { [key]: { ...details, status } };
    return result as HealthIndicatorResult<Key>;
  }
}
