// The log (lib/core/log.ts): JSON lines written in batches, so that the access log costs little
// (issue 13). Whatever is batched still arrives: an access-log line within about a second
// with no traffic after it, everything when log.flush() returns, and everything at exit.

import { expect } from 'chai';
import { closeSync, openSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { createLogger, logRequest, type RequestLine } from '../lib/core/log.js';
import { REPO, run, tempDir } from './helpers/server.js';

const LINE: RequestLine = { reqId: 'r-1', method: 'GET', path: '/simple/demo/', status: 200, bytes: 1234, ms: 1.25, user: undefined, remote: '127.0.0.1' };
const LOGGED = { level: 30, name: 'pypi-lite', component: 'http', reqId: 'r-1', method: 'GET', path: '/simple/demo/', status: 200, bytes: 1234, ms: 1.25, remote: '127.0.0.1', msg: 'request' };

describe('the log: batched lines still arrive', function () {
  let dir: string;
  let file: string;
  let fd: number;

  beforeEach(async () => {
    dir = await tempDir('pypi-lite-log-');
    file = path.join(dir, 'log');
    fd = openSync(file, 'a');
  });
  afterEach(async () => {
    closeSync(fd);
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const lines = (): Record<string, unknown>[] =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('an access-log line is written within about a second, with nothing logged after it', async () => {
    const log = createLogger('info', 'json', fd).child({ component: 'http' });
    logRequest(log, LINE);
    const deadline = Date.now() + 3_000;
    while (lines().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(lines()).to.have.length(1);
    expect(lines()[0]).to.deep.include(LOGGED);
    expect(lines()[0]).not.to.have.property('user');
  });

  it('log.flush() has written every line, batched or not, when it returns', () => {
    const log = createLogger('info', 'json', fd);
    const http = log.child({ component: 'http' });
    for (let i = 0; i < 3; i++) logRequest(http, { ...LINE, reqId: `r-${i}` });
    log.warn({ file: 'x.whl' }, 'a warning');
    log.flush();
    expect(lines().map((l) => l.reqId ?? l.msg)).to.deep.equal(['r-0', 'r-1', 'r-2', 'a warning']);
  });

  it('the access log keeps the redaction of passwords out of its way, not out of the other lines', () => {
    const log = createLogger('info', 'json', fd);
    log.info({ password: 'hunter2', nested: { password: 'hunter3' } }, 'careless');
    logRequest(log, { ...LINE, user: 'alice' });
    log.flush();
    const [careless, request] = lines();
    expect(careless).to.deep.include({ password: '[redacted]', nested: { password: '[redacted]' } });
    expect(request).to.deep.include({ user: 'alice', msg: 'request' });
  });

  it("the access line is the line pino would write: same fields, order and escaping", () => {
    const log = createLogger('info', 'json', fd).child({ component: 'http' });
    const odd: RequestLine = { ...LINE, path: '/simple/"q\\t\tx\u00e9\u2028/', user: 'b"ob', remote: '::ffff:10.0.0.1' };
    logRequest(log, odd);
    logRequest(log, { ...LINE, method: undefined, ms: Number.NaN });
    log.flush();
    const written = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    // pino itself, with the same options and bindings, writing the same fields.
    const expected: string[] = [];
    const reference = pino({ level: 'info', base: { name: 'pypi-lite' } }, { write: (l: string) => void expected.push(l.trimEnd()) }).child({ component: 'http' });
    reference.info(odd, 'request');
    reference.info({ ...LINE, method: undefined, ms: Number.NaN }, 'request');
    const untimed = (l: string) => l.replace(/"time":\d+/, '"time":0');
    expect(written.map(untimed)).to.deep.equal(expected.map(untimed));
  });

  for (const [how, code] of [
    ['process.exit()', 'process.exit(3)'],
    ['the end of the program', 'process.exitCode = 3'],
    ['an uncaught exception', 'process.exitCode = 3; setImmediate(() => { throw new Error("boom") })'],
  ] as const) {
    it(`lines still in the batch are written at exit: ${how}`, async () => {
      const script = `
        import { createLogger, logRequest } from ${JSON.stringify(path.join(REPO, 'dist/lib/core/log.js'))};
        const log = createLogger('info', 'json').child({ component: 'http' });
        for (let i = 0; i < 5; i++) logRequest(log, ${JSON.stringify(LINE)});
        ${code};
      `;
      const r = await run(process.execPath, ['--input-type=module', '-e', script], { env: process.env, timeoutMs: 30_000 });
      expect(r.code, r.stderr).to.be.oneOf([1, 3]);
      const out = r.stdout.split('\n').filter(Boolean);
      expect(out, r.stderr).to.have.length(5);
      for (const l of out) expect(JSON.parse(l)).to.deep.include(LOGGED);
    });
  }
});
