// The server writes its log in batches (lib/core/log.ts); a line must not be lost when the server
// stops: at SIGTERM/SIGINT (exit 0) and at a fatal error (exit 1, lib/cli.ts), the access-log
// lines of the last requests and the last message reach stdout before the process ends.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { copyExample, spawnServer, waitHealthy } from './helpers/server.js';

describe('the server log at exit', function () {
  this.timeout(60_000);
  const roots: string[] = [];
  after(async () => {
    for (const r of roots) await fsp.rm(r, { recursive: true, force: true });
  });

  /** Start a server, send `n` requests for distinct paths, then `signal` at once; what it wrote. */
  async function requestsThenSignal(signal: NodeJS.Signals, env: NodeJS.ProcessEnv = {}) {
    const root = await copyExample();
    roots.push(root);
    const srv = await spawnServer(['--disable-fallback', root], { env });
    try {
      await waitHealthy(srv.url);
      const paths = Array.from({ length: 20 }, (_, i) => `/simple/not-here-${i}/`);
      for (const p of paths) expect((await fetch(`${srv.url}${p}`)).status).to.equal(404);
      const closed = new Promise<number | null>((resolve) => srv.proc.once('close', (code) => resolve(code)));
      srv.proc.kill(signal);
      const code = await closed;
      const logged = new Set(srv.logs().filter((l) => l.msg === 'request').map((l) => l.path));
      return { code, missing: paths.filter((p) => !logged.has(p)), srv };
    } finally {
      await srv.stop('SIGKILL');
    }
  }

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} right after requests: every request's line is written, then the process exits 0`, async () => {
      const { code, missing, srv } = await requestsThenSignal(signal);
      expect(code, srv.output().slice(-2000)).to.equal(0);
      expect(missing, srv.output().slice(-2000)).to.deep.equal([]);
      expect(srv.logs().some((l) => l.msg === 'shutting down' && l.signal === signal)).to.equal(true);
    });
  }

  it('a fatal error right after requests: the request lines and the fatal line are written, exit 1', async () => {
    const { code, missing, srv } = await requestsThenSignal('SIGUSR2', { NODE_ENV: 'test', PYPI_LITE_TEST_FAULT: 'uncaught' });
    expect(code, srv.output().slice(-2000)).to.equal(1);
    expect(missing, srv.output().slice(-2000)).to.deep.equal([]);
    const fatal = srv.logs().find((l) => l.level === 60);
    expect(String(fatal?.msg), srv.output().slice(-2000)).to.contain('uncaught exception');
  });
});
