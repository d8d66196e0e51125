import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpCache, writeReply } from '../../src/index.js';
import { get, instances } from './support.js';

describe('HttpCache on a plain Node server (no framework)', () => {
  const pool = instances('http-core');
  afterEach(async () => {
    await pool.dispose();
    pool.renew();
  });

  async function server(handler: (req: IncomingMessage, res: ServerResponse) => void) {
    const { cache } = await pool.make();
    const core = new HttpCache<IncomingMessage>({ cache, cacheControl: 'public, max-age=60' });
    let runs = 0;
    const url = await pool.listen(async (req, res) => {
      const decision = await core.decide(
        req,
        { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers },
        res,
      );
      if (decision.kind === 'hit') return writeReply(res, decision.reply);
      runs++;
      handler(req, res);
    });
    return { url, runs: () => runs };
  }

  it('captures raw writeHead / write / end, and replays status, headers and body', async () => {
    const { url, runs } = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/csv', 'x-report': 'monthly' });
      res.write('a,b\n');
      res.end('1,2\n');
    });
    const miss = await get(`${url}/report.csv`);
    const hit = await get(`${url}/report.csv`);
    for (const response of [miss, hit]) {
      expect(response.status).toBe(200);
      expect(response.text).toBe('a,b\n1,2\n');
      expect(response.headers.get('content-type')).toBe('text/csv');
      expect(response.headers.get('x-report')).toBe('monthly');
      expect(response.headers.get('cache-control')).toBe('public, max-age=60');
    }
    expect([miss.headers.get('x-cache'), hit.headers.get('x-cache')]).toEqual(['MISS', 'HIT']);
    expect(hit.headers.get('age')).toMatch(/^\d+$/);
    expect(runs()).toBe(1);
  });

  it('stores a 204 and a 301 (statuses allowed by default)', async () => {
    const { url, runs } = await server((req, res) => {
      if (req.url === '/old') {
        res.writeHead(301, { location: '/new' }).end();
      } else {
        res.statusCode = 204;
        res.end();
      }
    });
    for (let i = 0; i < 2; i++) {
      const moved = await fetch(`${url}/old`, { redirect: 'manual' });
      expect(moved.status).toBe(301);
      expect(moved.headers.get('location')).toBe('/new');
      const empty = await get(`${url}/empty`);
      expect(empty.status).toBe(204);
      expect(empty.body.length).toBe(0);
    }
    expect(runs()).toBe(2);
  });

  it('leaves other methods alone', async () => {
    const { url, runs } = await server((_req, res) => {
      res.end('posted');
    });
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${url}/x`, { method: 'POST' });
      expect(await response.text()).toBe('posted');
      expect(response.headers.get('x-cache')).toBeNull();
    }
    expect(runs()).toBe(2);
  });
});
