// After an uncaught exception (or an unhandled rejection) the server must not keep serving in
// a state Node documents as undefined: it logs the error (the log line reaches stdout) and
// exits non-zero, so that the README's systemd unit (Restart=on-failure) restarts it.
// The fault is injected through a hook honoured only with NODE_ENV=test (lib/cli.ts).

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { copyExample, spawnServer, waitHealthy } from './helpers/server.js';

async function exitWithin(exited: Promise<number | null>, ms: number): Promise<number | null | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'still running'>((r) => (timer = setTimeout(() => r('still running'), ms)));
  try {
    return await Promise.race([exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('fatal errors in the server process', function () {
  this.timeout(60_000);

  for (const [fault, message] of [
    ['uncaught', 'uncaught exception'],
    ['rejection', 'unhandled rejection'],
  ] as const) {
    it(`an ${message} is logged and the process exits with code 1`, async () => {
      const root = await copyExample();
      const srv = await spawnServer(['--disable-fallback', root], { env: { NODE_ENV: 'test', PYPI_LITE_TEST_FAULT: fault } });
      try {
        await waitHealthy(srv.url);
        const exited = new Promise<number | null>((resolve) => srv.proc.once('exit', (code) => resolve(code)));
        srv.proc.kill('SIGUSR2');
        expect(await exitWithin(exited, 10_000), srv.output()).to.equal(1);
        const fatal = srv.logs().find((l) => l.level === 60);
        expect(fatal, srv.output()).to.not.equal(undefined);
        expect(fatal!.msg).to.contain(message);
        expect(JSON.stringify(fatal!.err)).to.contain(`test fault: ${message}`);
        // nothing answers any more
        const after = await fetch(`${srv.url}/health`).then(
          (r) => r.status,
          () => 'refused',
        );
        expect(after).to.equal('refused');
      } finally {
        await srv.stop('SIGKILL');
        await fsp.rm(root, { recursive: true, force: true });
      }
    });
  }

  it('the fault hook is inert outside NODE_ENV=test (SIGUSR2 does not crash a production server)', async () => {
    const root = await copyExample();
    const srv = await spawnServer(['--disable-fallback', root], { env: { NODE_ENV: 'production', PYPI_LITE_TEST_FAULT: 'uncaught' } });
    try {
      await waitHealthy(srv.url);
      // Node's default for SIGUSR2 without a listener is to terminate; the server must not have
      // installed the hook's listener, so the signal is not turned into an exception either way.
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
        srv.proc.once('exit', (code, signal) => resolve({ code, signal })),
      );
      srv.proc.kill('SIGUSR2');
      const r = await exited;
      expect(r, srv.output()).to.deep.equal({ code: null, signal: 'SIGUSR2' });
      expect(srv.output()).to.not.contain('test fault');
    } finally {
      await srv.stop('SIGKILL');
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});
