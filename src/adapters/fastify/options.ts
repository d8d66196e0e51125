import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { CacheOptions } from '../../cache/options.js';
import type { CreateClientOptions } from '../../client/create-client.js';
import type { RedisLike } from '../../client/types.js';
import type { Duration } from '../../common/duration.js';
import { InvalidOptionError } from '../../common/errors.js';
import { durationSchema, parseOptions, positiveInt, prefixSchema, redisClientSchema } from '../../common/options.js';
import type { RedisHealthOptions } from '../../health/redis-health.js';
import type { LockOptions } from '../../lock/options.js';
import type { RateLimitHeaderMode } from '../../ratelimit/headers.js';
import type { LimitRule } from '../../ratelimit/rules.js';
import type { RequestList } from './lists.js';
import type { RateLimitHooks } from './refusal.js';

const WHERE = 'the redscale Fastify plugin';

const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { message: 'a function' });
/** An allow or deny list: keys, or a predicate over the request and its key. */
const requestList = z.union([
  z.array(z.string().min(1)),
  fn<(request: FastifyRequest, key: string) => boolean | Promise<boolean>>(),
]);
// Sub-options of the primitives are validated by their own constructors, at registration too.
const subOptions = z.record(z.string(), z.unknown());

// @fastify/rate-limit's hooks, accepted in the plugin's `rateLimit` and in a route's config.
const hookFields = {
  errorResponseBuilder: fn<RateLimitHooks['errorResponseBuilder']>().optional(),
  onExceeding: fn<RateLimitHooks['onExceeding']>().optional(),
  onExceeded: fn<RateLimitHooks['onExceeded']>().optional(),
  skipOnError: z.boolean().optional(),
};

/** `skipOnError` is `onRedisError` in the peer's words: both at once would contradict each other. */
function oneErrorPolicy(options: { skipOnError?: boolean; onRedisError?: string }, ctx: z.RefinementCtx): void {
  if (options.skipOnError !== undefined && options.onRedisError !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['skipOnError'],
      message: `skipOnError or onRedisError, not both (skipOnError: true is onRedisError: 'allow')`,
    });
  }
}

const pluginSchema = z
  .strictObject({
    redis: redisClientSchema.optional(),
    url: z.union([z.string().min(1), subOptions]).optional(),
    prefix: prefixSchema.default('redscale'),
    rateLimit: z
      .strictObject({
        onRedisError: z.enum(['allow', 'deny', 'memory']).optional(),
        timeout: durationSchema().optional(),
        localDenyCache: z
          .union([z.literal(false), z.strictObject({ maxEntries: positiveInt().optional() })])
          .optional(),
        headers: z.union([z.enum(['draft-6', 'draft-7', 'draft-8', 'legacy']), z.literal(false)]).default('draft-7'),
        allowList: requestList.optional(),
        denyList: requestList.optional(),
        ...hookFields,
      })
      .superRefine(oneErrorPolicy)
      .prefault({}),
    cache: z.union([z.literal(false), subOptions]).optional(),
    lock: subOptions.optional(),
    health: z
      .looseObject({
        routes: z
          .union([
            z.literal(false),
            z.strictObject({
              prefix: z
                .string()
                .regex(/^\/\S*$/, { message: 'a path starting with "/"' })
                .optional(),
            }),
          ])
          .optional(),
      })
      .optional(),
  })
  .superRefine((options, ctx) => {
    if (!options.redis && options.url === undefined) {
      ctx.addIssue({ code: 'custom', path: ['redis'], message: 'an ioredis client (redis) or a url to create one' });
    }
  });

/** The plugin's options after validation, with defaults applied. */
export interface ParsedPluginOptions {
  redis: RedisLike | undefined;
  url: string | CreateClientOptions | undefined;
  prefix: string;
  rateLimit: RateLimitHooks & {
    onRedisError?: 'allow' | 'deny' | 'memory';
    timeout?: number;
    localDenyCache?: false | { maxEntries?: number };
    headers: RateLimitHeaderMode | false;
    allowList?: RequestList;
    denyList?: RequestList;
  };
  cache: Omit<CacheOptions, 'redis'> | false | undefined;
  lock: Omit<LockOptions, 'redis'> | undefined;
  health: (Omit<RedisHealthOptions, 'redis'> & { routes?: { prefix?: string } | false }) | undefined;
}

/**
 * Validates the plugin's options like every redscale constructor does: unknown options (a
 * misplaced `onRedisError`), header modes that do not exist (`'draft-9'`) and missing Redis are
 * an {@link InvalidOptionError} at registration, never silently ignored.
 */
export function parsePluginOptions(options: unknown): ParsedPluginOptions {
  return parseOptions(pluginSchema, options ?? {}, WHERE) as ParsedPluginOptions;
}

/** A route's `config.redscale` after validation. */
export interface ParsedRouteLimit extends RateLimitHooks {
  limits: LimitRule | LimitRule[];
  key?: (request: FastifyRequest) => string | number | Promise<string | number>;
  cost?: number | ((request: FastifyRequest) => number | Promise<number>);
  blockFor?: Duration;
  limitsFor?: (
    request: FastifyRequest,
  ) => LimitRule | readonly LimitRule[] | undefined | Promise<LimitRule | readonly LimitRule[] | undefined>;
  allowList?: RequestList;
  denyList?: RequestList;
}

const routeSchema = z.strictObject({
  // Rules are validated by the limiter built for the route, right after this.
  limits: z.unknown().refine((value) => value !== undefined, { message: 'a limit or an array of limits' }),
  key: fn<ParsedRouteLimit['key']>().optional(),
  cost: z.union([positiveInt(), fn<(request: FastifyRequest) => number>()]).optional(),
  blockFor: durationSchema({ allowZero: true }).optional(),
  limitsFor: fn<ParsedRouteLimit['limitsFor']>().optional(),
  allowList: requestList.optional(),
  denyList: requestList.optional(),
  ...hookFields,
});

/** Validates a route's `config.redscale` when the route is registered. */
export function parseRouteLimit(config: unknown, route: string): ParsedRouteLimit {
  if (config === null || typeof config !== 'object') {
    throw new InvalidOptionError('config.redscale', config, 'an object with `limits`', `route ${route}`);
  }
  return parseOptions(routeSchema, config, `config.redscale of route ${route}`) as ParsedRouteLimit;
}
