// The app factory in-process: createApp(config, deps) builds an app that does not listen, so
// tests can wire it with real collaborators, or with one that fails on purpose.

import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { createApp, type AppDeps } from '../lib/app.js';
import { makeConfig } from './helpers/config.js';
import { startServer, type RunningServer } from '../lib/server.js';
import { PageCache } from '../lib/simple/pages.js';
import { copyExample } from './helpers/server.js';

interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
}

function memoryLogger(lines: LogLine[]) {
  return pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
}

describe('createApp', function () {
  let running: RunningServer;
  const lines: LogLine[] = [];

  before(async function () {
    const root = await copyExample();
    running = await startServer(makeConfig({ roots: [root] }), memoryLogger(lines));
    await running.loaded;
    await running.indexer.whenIdle();
  });
  after(async () => running.close());

  it('is served by startServer on an ephemeral port', async function () {
    const r = await fetch(`${running.url}/simple/pypi-lite-demo/`);
    expect(r.status).to.equal(200);
    expect(await r.text()).to.contain('pypi_lite_demo-2.0.0-py3-none-any.whl#sha256=');
  });

  it('turns an unexpected exception into a 500 with a request id, logs it, and keeps serving', async function () {
    const failing = Object.create(PageCache.prototype) as PageCache;
    failing.root = () => {
      throw new Error('simulated bug');
    };
    failing.cached = () => undefined;
    const log = memoryLogger(lines);
    const deps: AppDeps = { ...running.deps, pages: failing, log };
    const app = createApp(makeConfig({ roots: ['/nonexistent'] }), deps);
    const server = http.createServer(app).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const r = await fetch(`http://127.0.0.1:${port}/simple/`);
      expect(r.status).to.equal(500);
      const body = await r.text();
      const m = /request id (\S+)/.exec(body);
      expect(m, body).to.not.equal(null);
      const logged = lines.find((l) => l.msg === 'unexpected error' && l.reqId === m![1]);
      expect(logged, 'the 500 is logged with the same request id').to.not.equal(undefined);
      expect(body).to.not.contain('simulated bug');
      const again = await fetch(`http://127.0.0.1:${port}/packages/pypi_lite_demo-2.0.0-py3-none-any.whl`);
      expect(again.status).to.equal(200);
    } finally {
      server.close();
    }
  });

  it('answers client errors with a 4xx whose reason phrase carries the message', async function () {
    const r = await fetch(`${running.url}/simple/no-such-project/`);
    expect(r.status).to.equal(404);
    expect(r.statusText).to.equal('Project not found');
    const n = await fetch(`${running.url}/simple/`, { headers: { Accept: 'application/json' } });
    expect(n.status).to.equal(406);
    expect(n.statusText).to.match(/^Not Acceptable/);
  });
});
