import type { FastifyRequest } from 'fastify';

/**
 * An allow or deny list of a Fastify route, as @fastify/rate-limit's `allowList`: keys (the
 * limiter's identity), or a predicate over the request and its key, which may be async.
 */
export type RequestList = readonly string[] | ((request: FastifyRequest, key: string) => boolean | Promise<boolean>);

/** A route's lists, resolved: arrays become sets (O(1) per request). */
export interface RouteLists {
  allow: ReadonlySet<string> | ((request: FastifyRequest, key: string) => boolean | Promise<boolean>) | undefined;
  deny: ReadonlySet<string> | ((request: FastifyRequest, key: string) => boolean | Promise<boolean>) | undefined;
}

/** Resolves a route's lists (the route's own, else the plugin's). */
export function routeLists(allow: RequestList | undefined, deny: RequestList | undefined): RouteLists {
  const resolve = (list: RequestList | undefined) => (typeof list === 'function' || !list ? list : new Set(list));
  return { allow: resolve(allow), deny: resolve(deny) };
}

/**
 * Which list answers for this request, before the limiter is asked: the deny list first (an
 * identity on both is refused), then the allow list. Same semantics as the core limiter's
 * `allowList` / `denyList`, with the request in hand.
 */
export async function listed(
  lists: RouteLists,
  request: FastifyRequest,
  key: string,
): Promise<'allow-list' | 'deny-list' | undefined> {
  if (lists.deny && (await on(lists.deny, request, key))) return 'deny-list';
  if (lists.allow && (await on(lists.allow, request, key))) return 'allow-list';
  return undefined;
}

/** A predicate's answer counts by truthiness, as @fastify/rate-limit's `allowList` does. */
async function on(list: NonNullable<RouteLists['allow']>, request: FastifyRequest, key: string): Promise<boolean> {
  return typeof list === 'function' ? Boolean(await list(request, key)) : list.has(key);
}
