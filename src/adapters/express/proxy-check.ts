import type { Request } from 'express';

/** The codes of the warnings {@link checkProxySetup} emits (`warning.code`). */
export type ProxyWarningCode =
  | 'REDSCALE_PERMISSIVE_TRUST_PROXY'
  | 'REDSCALE_UNEXPECTED_X_FORWARDED_FOR'
  | 'REDSCALE_FORWARDED_HEADER'
  | 'REDSCALE_UNDEFINED_IP';

/**
 * Which proxy checks `rateLimit()` runs (all by default), as express-rate-limit's `validate`:
 * `false` turns them all off, an object turns off the ones set to `false`.
 */
export interface ProxyChecks {
  /** Warn when `trust proxy` is `true`: any client can then pick its own IP with `X-Forwarded-For`. */
  trustProxy?: boolean;
  /** Warn when a request carries `X-Forwarded-For` while `trust proxy` is off: every client is the proxy. */
  xForwardedFor?: boolean;
  /** Warn when a request carries `Forwarded` (RFC 7239), which Express ignores. */
  forwarded?: boolean;
  /** Warn when `req.ip` is undefined (a destroyed connection, or a server that is not Node's). */
  ip?: boolean;
}

/** The `type` of the warnings, for `process.on('warning', …)` filters. */
export const PROXY_WARNING_TYPE = 'RedscaleWarning';

// Per Express app, the codes already emitted: each warning is emitted once per app.
const emitted = new WeakMap<object, Set<ProxyWarningCode>>();
// Requests that did not come through an Express app (no `req.app`) share one set.
const NO_APP = {};

const CHECKS: Array<[keyof ProxyChecks, ProxyWarningCode, (req: Request) => boolean, string]> = [
  [
    'ip',
    'REDSCALE_UNDEFINED_IP',
    (req) => req.ip === undefined,
    "req.ip is undefined, so every such request shares the key 'unknown'. The connection may have been " +
      'destroyed early, or the server is not a Node http server; pass a keyGenerator.',
  ],
  [
    'trustProxy',
    'REDSCALE_PERMISSIVE_TRUST_PROXY',
    (req) => req.app?.get('trust proxy') === true,
    "Express's 'trust proxy' is true, so req.ip is whatever the client writes in X-Forwarded-For and " +
      'anyone can escape IP-based rate limits. Set it to the number of proxies in front of the app (1), or their addresses.',
  ],
  [
    'xForwardedFor',
    'REDSCALE_UNEXPECTED_X_FORWARDED_FOR',
    (req) => req.headers['x-forwarded-for'] !== undefined && req.app?.get('trust proxy') === false,
    "A request carries X-Forwarded-For but Express's 'trust proxy' is false (its default), so req.ip is " +
      "the proxy's address and all clients behind it share one limit. Set 'trust proxy' to the number of proxies (1).",
  ],
  [
    'forwarded',
    'REDSCALE_FORWARDED_HEADER',
    (req) => req.headers.forwarded !== undefined && req.ip === req.socket?.remoteAddress,
    'A request carries the Forwarded header (RFC 7239), which Express ignores, so req.ip is the ' +
      "proxy's address. Configure the proxy to send X-Forwarded-For, or pass a keyGenerator that reads Forwarded.",
  ],
];

/**
 * Warns, once per Express app and code, about a proxy setup that makes `req.ip` (the default
 * rate-limit key) wrong — the checks express-rate-limit runs in its default key generator. A
 * Node process warning (`process.emitWarning`, type `'RedscaleWarning'`, with `code`): not the
 * limiter's `onError`, which reports Redis failures and may drive alerts or fallbacks; Node
 * prints it once to stderr, `process.on('warning')` observes it, `--no-warnings` silences it.
 */
export function checkProxySetup(req: Request, checks: ProxyChecks): void {
  const app: object = req.app ?? NO_APP;
  let done = emitted.get(app);
  for (const [name, code, applies, message] of CHECKS) {
    if (checks[name] === false || done?.has(code) || !applies(req)) continue;
    if (!done) {
      done = new Set();
      emitted.set(app, done);
    }
    done.add(code);
    process.emitWarning(`redscale rateLimit(): ${message}`, { type: PROXY_WARNING_TYPE, code });
  }
}
