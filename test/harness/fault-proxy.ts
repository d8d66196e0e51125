import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/**
 * What a link does with the bytes it carries.
 *
 * - `pass`: forward at once.
 * - `delay`: forward each chunk `ms` later (order kept): a slow network or a busy server.
 * - `pause`: hold every byte, keep both sockets open, and deliver what was held when the link is
 *   set back to `pass` or `delay`: a stalled server (SIGSTOP) or a partition that heals before TCP
 *   gives up. Commands sent meanwhile run late, when the link resumes.
 * - `blackhole`: drop every byte and keep both sockets open: a half-open link whose far end is
 *   gone. Nothing sent meanwhile ever arrives.
 * - `drop-replies`: forward what the client sends, drop what Redis answers: commands run, their
 *   replies are lost (then reset the link, and ioredis resends the unanswered commands).
 */
export type LinkMode =
  | { kind: 'pass' }
  | { kind: 'delay'; ms: number }
  | { kind: 'pause' }
  | { kind: 'blackhole' }
  | { kind: 'drop-replies' };

type Direction = 'toServer' | 'toClient';

/** One client connection through the proxy, and its upstream connection to Redis. */
export class ProxyLink {
  /** 0 for the first connection the proxy accepted, then 1, 2… */
  readonly index: number;
  /** Command names (lowercase) the client has sent on this link, e.g. `subscribe`, `evalsha`. */
  readonly commands = new Set<string>();
  readonly #client: Socket;
  readonly #server: Socket;
  #mode: LinkMode;
  readonly #held: Record<Direction, Buffer[]> = { toServer: [], toClient: [] };
  readonly #nextAt: Record<Direction, number> = { toServer: 0, toClient: 0 };
  #closed = false;

  constructor(index: number, client: Socket, server: Socket, mode: LinkMode) {
    this.index = index;
    this.#client = client;
    this.#server = server;
    this.#mode = mode;
    client.on('data', (chunk: Buffer) => {
      this.#record(chunk);
      this.#carry('toServer', chunk);
    });
    server.on('data', (chunk: Buffer) => this.#carry('toClient', chunk));
    const close = () => this.destroy();
    client.on('close', close);
    server.on('close', close);
    client.on('error', close);
    server.on('error', close);
  }

  /** Whether both sockets are still open. */
  get open(): boolean {
    return !this.#closed;
  }

  /** The link's mode now. */
  get mode(): LinkMode {
    return this.#mode;
  }

  /** Whether the client sent a command of this name (case-insensitive) on this link. */
  sent(command: string): boolean {
    return this.commands.has(command.toLowerCase());
  }

  /** Switches the mode. Leaving `pause` delivers what was held, in order. */
  set(mode: LinkMode): void {
    this.#mode = mode;
    if (mode.kind === 'pass' || mode.kind === 'delay') {
      for (const direction of ['toServer', 'toClient'] as const) {
        for (const chunk of this.#held[direction].splice(0)) this.#carry(direction, chunk);
      }
    } else if (mode.kind === 'blackhole') {
      this.#held.toServer.length = 0;
      this.#held.toClient.length = 0;
    }
  }

  /** Resets both sockets (the client sees ECONNRESET), as a dropped connection or a restarted server. */
  reset(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.resetAndDestroy();
    this.#server.resetAndDestroy();
  }

  /** Closes both sockets. */
  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
    this.#server.destroy();
  }

  #carry(direction: Direction, chunk: Buffer): void {
    if (this.#closed) return;
    const to = direction === 'toServer' ? this.#server : this.#client;
    const mode = this.#mode;
    if (mode.kind === 'pass') {
      to.write(chunk);
    } else if (mode.kind === 'pause') {
      this.#held[direction].push(chunk);
    } else if (mode.kind === 'drop-replies') {
      if (direction === 'toServer') to.write(chunk);
    } else if (mode.kind === 'delay') {
      // Later chunks never overtake earlier ones.
      const at = Math.max(Date.now() + mode.ms, this.#nextAt[direction]);
      this.#nextAt[direction] = at;
      setTimeout(
        () => {
          if (!this.#closed) to.write(chunk);
        },
        Math.max(0, at - Date.now()),
      );
    }
    // blackhole: dropped both ways.
  }

  /** Notes the command names in a RESP request (good enough to tell a subscriber from a worker). */
  #record(chunk: Buffer): void {
    const text = chunk.toString('latin1');
    for (const match of text.matchAll(/\*\d+\r\n\$\d+\r\n([A-Za-z_.|]+)\r\n/g)) {
      this.commands.add((match[1] as string).toLowerCase());
    }
  }
}

/**
 * A TCP proxy a test puts between a client and a real Redis, to make the link slow, stalled,
 * half-open or reset at any moment, on every connection or on one (just the subscriber, say):
 * what killing the server cannot do. Connect the client to {@link url} or {@link port}.
 *
 * @example
 * ```ts
 * const proxy = await FaultProxy.start(redisUrl)
 * const redis = createClient(proxy.url)
 * proxy.set({ kind: 'delay', ms: 300 })      // every link, and every link opened from now on
 * proxy.links.find((link) => link.sent('subscribe'))?.set({ kind: 'blackhole' })
 * proxy.resetAll()
 * await proxy.close()
 * ```
 */
export class FaultProxy {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #links: ProxyLink[] = [];
  #mode: LinkMode = { kind: 'pass' };
  #refusing = false;
  #accepted = 0;

  private constructor(server: Server, target: { host: string; port: number }) {
    this.#server = server;
    this.#target = target;
  }

  /** Starts a proxy on a free port of 127.0.0.1 in front of `target` (a `redis://` URL or a port). */
  static async start(target: string | number | { host: string; port: number }): Promise<FaultProxy> {
    const upstream =
      typeof target === 'number'
        ? { host: '127.0.0.1', port: target }
        : typeof target === 'string'
          ? (() => {
              const url = new URL(target);
              return { host: url.hostname || '127.0.0.1', port: Number(url.port || 6379) };
            })()
          : target;
    const server = createServer();
    const proxy = new FaultProxy(server, upstream);
    server.on('connection', (client) => proxy.#accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  /** The port clients connect to. */
  get port(): number {
    const address = this.#server.address();
    if (!address || typeof address === 'string') throw new Error('the proxy is not listening');
    return address.port;
  }

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Every link accepted so far, open or closed, in the order they were accepted. */
  get links(): readonly ProxyLink[] {
    return this.#links;
  }

  /** The links still open. */
  get openLinks(): ProxyLink[] {
    return this.#links.filter((link) => link.open);
  }

  /** Sets the mode of every open link and of every link accepted from now on. */
  set(mode: LinkMode): void {
    this.#mode = mode;
    for (const link of this.openLinks) link.set(mode);
  }

  /** Back to forwarding at once, on every link (delivering what `pause` held). */
  pass(): void {
    this.set({ kind: 'pass' });
  }

  /** Resets every open link (clients see ECONNRESET and reconnect through the proxy). */
  resetAll(): void {
    for (const link of this.openLinks) link.reset();
  }

  /** While on, new connections are reset at once: a server that is down. */
  refuse(on: boolean): void {
    this.#refusing = on;
  }

  /** Resolves once a link that sent `command` is open (e.g. the cache bus' `subscribe`). */
  async waitForLink(command: string, timeoutMs = 5_000): Promise<ProxyLink> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const link = this.openLinks.find((candidate) => candidate.sent(command));
      if (link) return link;
      if (Date.now() > deadline) throw new Error(`no open link sent ${command} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Stops listening and closes every link. */
  async close(): Promise<void> {
    for (const link of this.#links) link.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    if (this.#refusing) {
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = tcpConnect(this.#target);
    upstream.setNoDelay(true);
    const link = new ProxyLink(this.#accepted++, client, upstream, this.#mode);
    this.#links.push(link);
  }
}

/**
 * One {@link FaultProxy} per Cluster node, and the ioredis `natMap` that sends a Cluster client
 * through them (Cluster clients learn node addresses from `CLUSTER SLOTS`, so a proxy in front of
 * the startup node alone would be bypassed).
 *
 * @example
 * ```ts
 * const proxies = await ClusterProxies.start(inject('clusterNodes'))
 * const redis = createClient({ nodes: proxies.nodes, clusterOptions: { natMap: proxies.natMap } })
 * proxies.of(port).set({ kind: 'pause' })     // one master stalls
 * ```
 */
export class ClusterProxies {
  /** Proxy by the real node's port. */
  readonly #byPort: Map<number, FaultProxy>;

  private constructor(byPort: Map<number, FaultProxy>) {
    this.#byPort = byPort;
  }

  static async start(nodes: ReadonlyArray<{ host: string; port: number }>): Promise<ClusterProxies> {
    const proxies = await Promise.all(nodes.map((node) => FaultProxy.start(node)));
    return new ClusterProxies(new Map(nodes.map((node, i) => [node.port, proxies[i] as FaultProxy])));
  }

  /** Startup nodes (the proxies). */
  get nodes(): Array<{ host: string; port: number }> {
    return [...this.#byPort.values()].map((proxy) => ({ host: '127.0.0.1', port: proxy.port }));
  }

  /** Maps each real node address to its proxy, for `clusterOptions.natMap`. */
  get natMap(): Record<string, { host: string; port: number }> {
    const map: Record<string, { host: string; port: number }> = {};
    for (const [port, proxy] of this.#byPort) map[`127.0.0.1:${port}`] = { host: '127.0.0.1', port: proxy.port };
    return map;
  }

  /** The proxy in front of the node listening on `port` (a real node port). */
  of(port: number): FaultProxy {
    const proxy = this.#byPort.get(port);
    if (!proxy) throw new Error(`no proxy for node port ${port}`);
    return proxy;
  }

  /** Every proxy. */
  get all(): FaultProxy[] {
    return [...this.#byPort.values()];
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((proxy) => proxy.close()));
  }
}
