import { type Request, type Response, Router } from 'express';
import { RedisHealth, type RedisHealthOptions } from '../../health/redis-health.js';
import { primitivesReport, type ReportedPrimitives } from '../../observability/summary.js';

/** What {@link healthRoutes} reports on besides Redis. */
export interface HealthRoutesExtras {
  /** Caches, limiters and locks to report at `GET /stats` (hit rate, breaker states, counters). */
  primitives?: ReportedPrimitives;
}

/**
 * A Router with `GET /live` (200 while the process runs, never touching Redis) and `GET /ready`
 * (200 for up/degraded, 503 for down, with the JSON report). With `primitives`, also
 * `GET /stats`: each cache's hit rate, each circuit breaker's state per Redis node and every
 * counter (see `primitivesReport`), without touching Redis.
 *
 * @example
 * ```ts
 * app.use('/health', healthRoutes({ redis, primitives: { caches: { users: cache } } }))
 * ```
 */
export function healthRoutes(options: ({ health: RedisHealth } | RedisHealthOptions) & HealthRoutesExtras): Router {
  const { primitives, ...rest } = options;
  const health = 'health' in rest ? rest.health : new RedisHealth(rest);
  const router = Router();
  if (primitives) {
    router.get('/stats', (_req: Request, res: Response) => {
      res.status(200).json(primitivesReport(primitives));
    });
  }
  router.get('/live', (_req: Request, res: Response) => {
    const { statusCode, body } = health.liveness();
    res.status(statusCode).json(body);
  });
  router.get('/ready', async (_req: Request, res: Response) => {
    // check() never rejects: a down Redis is a 503 within the health timeout.
    const { statusCode, body } = await health.readiness();
    res.status(statusCode).json(body);
  });
  return router;
}
