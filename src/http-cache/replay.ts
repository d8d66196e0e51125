import { type IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';

/**
 * Sends an internal GET through a Node request listener (an Express app is one) without a
 * network connection: the request carries `headers` and the original client's address, so the
 * app's middleware sees it as that client's; its response is discarded by the HTTP cache.
 */
export function dispatchInternal(
  listener: (req: IncomingMessage, res: ServerResponse) => void,
  url: string,
  headers: IncomingHttpHeaders,
  remoteAddress: string | undefined,
): void {
  const socket = new Socket();
  Object.defineProperty(socket, 'remoteAddress', { value: remoteAddress });
  const req = new IncomingMessage(socket);
  req.method = 'GET';
  req.url = url;
  req.headers = headers;
  req.push(null);
  listener(req, new ServerResponse(req));
}

/**
 * The top-level app of an Express app (itself unless mounted with `parent.use(path, app)`):
 * `req.originalUrl` is relative to it, so an internal request must start there.
 */
export function topLevelApp(app: unknown): unknown {
  let root = app as { parent?: unknown };
  while (root.parent) root = root.parent as { parent?: unknown };
  return root;
}
