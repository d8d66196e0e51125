import { createServer } from 'node:net';

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => resolve(bound));
    });
  });
}

const handedOut = new Set<number>();

/**
 * A TCP port that is free now. With `busPort`, port + 10000 is free too (a Cluster node's bus).
 * Ports handed out by this process are not handed out again.
 */
export async function freePort(options: { busPort?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = options.busPort ? 20_000 + Math.floor(Math.random() * 30_000) : await tryListen(0);
    if (port === undefined || handedOut.has(port)) continue;
    if (options.busPort && ((await tryListen(port)) === undefined || (await tryListen(port + 10_000)) === undefined)) {
      continue;
    }
    handedOut.add(port);
    return port;
  }
  throw new Error('no free TCP port found on 127.0.0.1');
}
