// The fast path in front of Express (lib/simple/fast-path.ts) is the one exception to the route
// table: it must answer a cached Simple API page exactly as the Express route does. Both paths
// here get the same requests (HTML, JSON, gzip, 304, HEAD; with and without --base-url) and
// must send the same bytes: status line, every header in order (Date aside) and the body.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../lib/app.js';
import type { Config } from '../lib/core/config.js';
import { makeConfig } from './helpers/config.js';
import { fastPath } from '../lib/simple/fast-path.js';
import { requestClasses } from '../lib/http/request-classes.js';
import express from 'express';
import { startServer, type RunningServer } from '../lib/server.js';
import { rawRequest } from './helpers/http.js';
import { copyExample } from './helpers/server.js';
import { pino } from 'pino';

const HTML = 'text/html';
const JSON_V1 = 'application/vnd.pypi.simple.v1+json';

async function listen(server: http.Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function head(method: string, path: string, headers: Record<string, string>): string {
  return `${method} ${path} HTTP/1.1\r\nHost: box\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}Connection: close\r\n\r\n`;
}

describe('the fast path answers byte for byte as the Express route', function () {
  let running: RunningServer;
  let root: string;
  const servers: http.Server[] = [];

  before(async function () {
    root = await copyExample();
    running = await startServer(makeConfig({ roots: [root] }), pino({ level: 'silent' }));
    await running.loaded;
    await running.indexer.whenIdle();
  });
  after(async function () {
    for (const s of servers) s.close();
    await running.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  /** The Express app alone, and the fast path alone (anything it declines is a 599). */
  async function pair(config: Config): Promise<{ express: string; fast: string }> {
    const app = createApp(config, running.deps);
    const fast = fastPath(config, { pages: running.deps.pages, log: running.deps.log, metrics: running.deps.metrics, enabled: true });
    const a = http.createServer(app);
    const b = http.createServer((req, res) => {
      if (fast(req, res)) return;
      res.writeHead(599, 'Declined by the fast path');
      res.end();
    });
    servers.push(a, b);
    return { express: await listen(a), fast: await listen(b) };
  }

  for (const basePath of ['', '/pypi']) {
    it(`pages, their gzip copies, HEAD and 304 ${basePath ? `under --base-url ${basePath}` : 'at the root'}`, async function () {
      const { express, fast } = await pair(makeConfig({ roots: [root], basePath }));
      let compared = 0;
      for (const page of ['/simple/', '/simple/pypi-lite-demo/', '/simple/fancy-mixed-name/']) {
        for (const accept of [HTML, JSON_V1]) {
          for (const encoding of [null, 'gzip']) {
            const base: Record<string, string> = { Accept: accept, ...(encoding ? { 'Accept-Encoding': encoding } : {}) };
            // The ETag of this representation, from the Express route (which also renders the page).
            const first = await rawRequest(express, head('GET', `${basePath}${page}`, base));
            expect(first.status, `${page} ${accept}`).to.equal(200);
            const etag = /^ETag: (.*)$/m.exec(first.head)?.[1];
            expect(etag, first.head).to.be.a('string');
            const variants: [string, Record<string, string>, number][] = [
              ['GET', base, 200],
              ['HEAD', base, 200],
              ['GET', { ...base, 'If-None-Match': etag! }, 304],
              ['HEAD', { ...base, 'If-None-Match': etag! }, 304],
              ['GET', { ...base, 'If-None-Match': '"something-else"' }, 200],
            ];
            for (const [method, headers, status] of variants) {
              const what = `${method} ${basePath}${page} ${JSON.stringify(headers)}`;
              const viaExpress = await rawRequest(express, head(method, `${basePath}${page}`, headers));
              const viaFast = await rawRequest(fast, head(method, `${basePath}${page}`, headers));
              expect(viaFast.status, `${what}: the fast path took it`).to.equal(status);
              expect(viaExpress.status, what).to.equal(status);
              const withoutDate = (h: string) => h.replace(/\r\nDate: [^\r]*/, '');
              expect(withoutDate(viaFast.head), what).to.equal(withoutDate(viaExpress.head));
              expect(viaFast.body.equals(viaExpress.body), `${what}: same body`).to.equal(true);
              if (method === 'GET' && status === 200) expect(viaFast.body.length, what).to.be.above(0);
              compared++;
            }
          }
        }
      }
      expect(compared).to.equal(3 * 2 * 2 * 5);
    });
  }

  it('declines what it does not serve: redirects, errors, unknown projects, writes', async function () {
    const { fast } = await pair(makeConfig({ roots: [root] }));
    for (const [method, path] of [
      ['GET', '/simple'],
      ['GET', '/simple/PyPI.Lite.Demo/'],
      ['GET', '/simple/no-such-project/'],
      ['POST', '/simple/'],
      ['GET', '/packages/'],
    ]) {
      const r = await rawRequest(fast, head(method, path, { Accept: HTML }));
      expect(r.status, `${method} ${path}`).to.equal(599);
    }
  });
});

describe('request classes (Express takes the server\'s requests as they are)', function () {
  it('requests and responses are made with the Express prototypes: Express changes none, and its helpers work on them', async function () {
    const app = express();
    const classes = requestClasses(app);
    const seen: boolean[] = [];
    app.get('/x', (req, res) => {
      // The prototypes the objects were made with are still theirs after Express took them.
      seen.push(Object.getPrototypeOf(req) === classes.IncomingMessage.prototype, Object.getPrototypeOf(res) === classes.ServerResponse.prototype, req.app === app);
      res.set('X-Host', req.get('host') ?? '').json({ ok: true });
    });
    const server = http.createServer(classes, app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/x`);
        expect(res.status).to.equal(200);
        expect(res.headers.get('x-host')).to.equal(`127.0.0.1:${port}`);
        expect(await res.json()).to.deep.equal({ ok: true });
      }
      expect(seen).to.deep.equal(Array<boolean>(9).fill(true));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
