import { z } from 'zod';
import type { RedscaleError } from '../common/errors.js';
import { InvalidOptionError } from '../common/errors.js';
import { durationSchema, MAX_TIMER_MS, prefixSchema, redisClientSchema } from '../common/options.js';
import { loggerSchema } from '../observability/logger.js';
import { ttlSchema } from './lease.js';

const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { message: 'a function' });

/** Most replicas a lock can ask to acknowledge a grant (a sanity bound, far above real deployments). */
export const MAX_REPLICAS = 100;

/** The `replicas` option (locks, semaphores, write buffers): how many replicas `WAIT` asks for. */
export const replicasSchema = z
  .number()
  .refine((n) => Number.isInteger(n) && n >= 0 && n <= MAX_REPLICAS, {
    message: `an integer from 0 to ${MAX_REPLICAS} (0: do not wait for replicas)`,
  })
  .default(0);

/** Constructor options every lock kind shares (`Lock`, `Semaphore`), with their defaults. */
export const leaseOptionsShape = {
  redis: redisClientSchema,
  prefix: prefixSchema.default('redscale'),
  ttl: ttlSchema.default(10_000),
  wait: durationSchema({ allowZero: true }).default(5_000),
  retryDelay: z
    .strictObject({
      min: durationSchema({ max: MAX_TIMER_MS }).default(10),
      max: durationSchema({ max: MAX_TIMER_MS }).default(500),
    })
    .refine((delay) => delay.min <= delay.max, { message: 'min not greater than max' })
    .prefault({}),
  timeout: durationSchema().default(1_000),
  replicas: replicasSchema,
  replicationTimeout: durationSchema({ max: MAX_TIMER_MS }).default(500),
  onError: fn<(error: RedscaleError) => void>().optional(),
  logger: loggerSchema.optional(),
};

/** Per-call options every acquire shares. */
export const acquireOptionsShape = {
  ttl: ttlSchema.optional(),
  wait: durationSchema({ allowZero: true }).optional(),
  autoExtend: z.boolean().optional(),
  signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, { message: 'an AbortSignal' }).optional(),
};

/** Most resources one `acquireAll` takes: each costs two keys in one script. */
export const MAX_RESOURCES = 1_000;

/** Throws the named error a bad resource name deserves. */
export function checkResource(resource: unknown, where: string): asserts resource is string {
  if (typeof resource !== 'string' || resource.length === 0) {
    throw new InvalidOptionError('resource', resource, 'a non-empty string naming what to lock', where);
  }
}

/** Validates a list of resources and drops repeats (a resource is locked once). */
export function checkResources(resources: unknown, where: string): string[] {
  if (!Array.isArray(resources) || resources.length === 0 || resources.length > MAX_RESOURCES) {
    throw new InvalidOptionError(
      'resources',
      resources,
      `an array of 1 to ${MAX_RESOURCES} non-empty strings naming what to lock`,
      where,
    );
  }
  resources.forEach((resource: unknown, i) => {
    if (typeof resource !== 'string' || resource.length === 0) {
      throw new InvalidOptionError(`resources[${i}]`, resource, 'a non-empty string naming what to lock', where);
    }
  });
  return [...new Set(resources as string[])];
}

/** Throws the named error a non-function deserves. */
export function checkFunction(value: unknown, where: string): void {
  if (typeof value !== 'function') throw new InvalidOptionError('fn', value, 'a function to run while holding', where);
}
