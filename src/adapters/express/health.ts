import { type Request, type Response, Router } from 'express';
import { RedisHealth, type RedisHealthOptions } from '../../health/redis-health.js';

/**
 * A Router with `GET /live` (200 while the process runs, never touching Redis) and `GET /ready`
 * (200 for up/degraded, 503 for down, with the JSON report).
 *
 * @example
 * ```ts
 * app.use('/health', healthRoutes({ redis }))
 * ```
 */
export function healthRoutes(options: { health: RedisHealth } | RedisHealthOptions): Router {
  const health = 'health' in options ? options.health : new RedisHealth(options);
  const router = Router();
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
