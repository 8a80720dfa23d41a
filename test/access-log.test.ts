// The request log line (lib/http/observe.ts) reports the body bytes actually sent: a HEAD
// request sends none, whatever Content-Length announces (fast path and Express routes alike).

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { pino } from 'pino';
import { makeConfig } from './helpers/config.js';
import { startServer, type RunningServer } from '../lib/server.js';
import { copyExample } from './helpers/server.js';

interface LogLine {
  msg: string;
  method?: string;
  path?: string;
  status?: number;
  bytes?: number;
}

describe('request log: bytes sent', function () {
  let root: string;
  let running: RunningServer;
  const lines: LogLine[] = [];

  before(async () => {
    root = await copyExample();
    running = await startServer(makeConfig({ roots: [root], logLevel: 'info' }), pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) }));
    await running.loaded;
    await running.indexer.whenIdle();
  });

  after(async () => {
    await running?.close();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  async function logged(method: string, path: string): Promise<LogLine> {
    for (let i = 0; i < 100; i++) {
      const l = lines.find((x) => x.msg === 'request' && x.method === method && x.path === path);
      if (l) return l;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no log line for ${method} ${path}`);
  }

  for (const path of ['/simple/pypi-lite-demo/', '/simple/', '/packages/pypi_lite_demo-1.0.0.tar.gz', '/pypi/pypi-lite-demo/json', '/packages/pypi_lite_demo-1.0.0-py3-none-any.whl.metadata']) {
    it(`HEAD ${path} is logged with 0 bytes, GET with the body length`, async () => {
      const get = await fetch(`${running.url}${path}`, { headers: { 'Accept-Encoding': 'identity' } });
      expect(get.status).to.equal(200);
      const body = Buffer.from(await get.arrayBuffer());
      const head = await fetch(`${running.url}${path}`, { method: 'HEAD', headers: { 'Accept-Encoding': 'identity' } });
      expect(head.status).to.equal(200);
      expect(Number(head.headers.get('content-length'))).to.equal(body.length);
      expect((await logged('GET', path)).bytes, 'GET').to.equal(body.length);
      const h = await logged('HEAD', path);
      expect([h.status, h.bytes], 'HEAD').to.deep.equal([200, 0]);
    });
  }
});
