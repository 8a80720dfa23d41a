// Access-control hardening (issue 9, items 1-3), against the real program:
// - with a password file, every write needs a valid user, whatever -a says;
// - what reveals metadata (the JSON API) needs `download`; what describes the index
//   (/, /metrics, the counts in /health) follows `list`;
// - --trust-proxy: the client address behind a reverse proxy, for the throttle and the logs.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BIN, REPO, copyExample, run, spawnServer, tempDir, waitHealthy, type Spawned } from './helpers/server.js';
import { basic, passwd } from './helpers/upload.js';

const ALICE_PW = 'Alice-s3cret-Pw';
const WRONG_PW = 'Wr0ng-Guess-Xyz';
const DEMO_WHEEL = 'pypi_lite_demo-1.0.0-py3-none-any.whl';

interface Got {
  status: number;
  statusText: string;
  headers: Headers;
  body: string;
  ms: number;
}

async function send(url: string, init: RequestInit = {}): Promise<Got> {
  const t0 = performance.now();
  const res = await fetch(url, { redirect: 'manual', ...init });
  const body = await res.text();
  const got = { status: res.status, statusText: res.statusText, headers: res.headers, body, ms: performance.now() - t0 };
  expect(got.status, `${init.method ?? 'GET'} ${url}: never a 5xx`).to.be.below(500);
  return got;
}

function expectChallenge(got: Got, what: string): void {
  expect(got.status, `${what}: ${got.status} ${got.statusText}`).to.equal(401);
  expect(got.statusText).to.equal('Authentication required');
  expect(got.headers.get('www-authenticate')).to.match(/^Basic realm="pypi-lite"/);
}

function uploadForm(action: string, fields: Record<string, string> = {}): FormData {
  const f = new FormData();
  f.set(':action', action);
  for (const [k, v] of Object.entries(fields)) f.set(k, v);
  return f;
}

const exists = (file: string) => fsp.stat(file).then(() => true, () => false);

describe('access control hardening', function () {
  this.timeout(90_000);

  let work: string;
  let htpasswd: string;
  const roots: string[] = [];
  const servers: Spawned[] = [];

  async function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ srv: Spawned; root: string }> {
    const root = await copyExample();
    roots.push(root);
    const srv = await spawnServer([...args, '--disable-fallback', root], { env });
    servers.push(srv);
    await waitHealthy(srv.url);
    return { srv, root };
  }

  before(async () => {
    work = await tempDir('pypi-lite-access-');
    htpasswd = path.join(work, 'htpasswd');
    const r = await passwd(htpasswd, 'alice', ALICE_PW);
    expect(r.code, r.stderr).to.equal(0);
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    for (const d of [work, ...roots]) await fsp.rm(d, { recursive: true, force: true });
  });

  describe('writes need a user whenever there is a password file, whatever -a says', () => {
    for (const a of ['download,list', 'download', '.']) {
      describe(`-P htpasswd -a ${a}`, () => {
        let srv: Spawned;
        let root: string;
        before(async () => {
          ({ srv, root } = await start(['-P', htpasswd, '-a', a]));
        });

        it('refuses an anonymous upload with 401 and a Basic challenge, a wrong password with 403', async () => {
          expectChallenge(await send(`${srv.url}/`, { method: 'POST', body: uploadForm('file_upload', { name: 'x', version: '1.0' }) }), 'upload');
          expectChallenge(await send(`${srv.url}/legacy/`, { method: 'POST', body: uploadForm('file_upload', { name: 'x', version: '1.0' }) }), 'upload to /legacy/');
          const wrong = await send(`${srv.url}/`, { method: 'POST', body: uploadForm('file_upload'), headers: basic('alice', WRONG_PW) });
          expect(wrong.status).to.equal(403);
          expect(wrong.statusText).to.equal('Invalid username or password: user "alice"');
          // The README quotes this very reason phrase (it used to quote another one).
          const readme = await fsp.readFile(path.join(REPO, 'README.md'), 'utf8');
          expect(/`403` with the reason `([^`]+)`/.exec(readme)?.[1]).to.equal(wrong.statusText);
          // A user gets past access control to the form checks.
          const user = await send(`${srv.url}/`, { method: 'POST', body: uploadForm('file_upload', { name: 'x', version: '1.0' }), headers: basic('alice', ALICE_PW) });
          expect(user.status, user.statusText).to.equal(400);
          expect(user.statusText).to.equal('No file uploaded in the "content" field');
        });

        it('refuses an anonymous remove_pkg, and the release stays', async () => {
          const got = await send(`${srv.url}/`, { method: 'POST', body: uploadForm('remove_pkg', { name: 'pypi-lite-demo', version: '1.0.0' }) });
          expectChallenge(got, 'remove_pkg');
          expect(await exists(path.join(root, DEMO_WHEEL)), 'the wheel is still there').to.equal(true);
          const page = await send(`${srv.url}/simple/pypi-lite-demo/`, { headers: basic('alice', ALICE_PW) });
          expect(page.body).to.include(DEMO_WHEEL);
        });

        it('refuses an anonymous yank and unyank, and nothing is yanked', async () => {
          for (const op of ['yank', 'unyank']) {
            const got = await send(`${srv.url}/api/${op}`, { method: 'POST', body: new URLSearchParams({ target: 'pypi-lite-demo==1.0.0', reason: 'x' }) });
            expectChallenge(got, op);
          }
          const page = await send(`${srv.url}/simple/pypi-lite-demo/`, { headers: { ...basic('alice', ALICE_PW), Accept: 'application/vnd.pypi.simple.v1+json' } });
          const files = (JSON.parse(page.body) as { files: { filename: string; yanked: unknown }[] }).files;
          expect(files.find((f) => f.filename === DEMO_WHEEL)?.yanked).to.equal(false);
        });

        it('asks for credentials on any other write method or path too (routes added later are covered)', async () => {
          expectChallenge(await send(`${srv.url}/api/something-new`, { method: 'POST', body: 'x=1' }), 'POST /api/something-new');
          expectChallenge(await send(`${srv.url}/packages/${DEMO_WHEEL}`, { method: 'DELETE' }), 'DELETE a file');
          expectChallenge(await send(`${srv.url}/packages/${DEMO_WHEEL}`, { method: 'PUT', body: 'x' }), 'PUT a file');
          expect(await exists(path.join(root, DEMO_WHEEL))).to.equal(true);
        });
      });
    }

    it('-a . -P . (no password file) still allows anonymous uploads, and says so loudly at startup', async () => {
      const { srv } = await start(['-a', '.', '-P', '.']);
      const got = await send(`${srv.url}/`, { method: 'POST', body: uploadForm('file_upload', { name: 'x', version: '1.0' }) });
      expect(got.status).to.equal(400);
      expect(got.statusText).to.equal('No file uploaded in the "content" field');
      const warning = srv.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('ANONYMOUS WRITES ARE ON'));
      expect(warning, srv.output()).to.not.equal(undefined);
      expect(warning!.level).to.equal(40); // pino's warn
    });

    it('-a update,download,list -P: the private server is unchanged (users upload)', async () => {
      const { srv } = await start(['-P', htpasswd, '-a', 'update,download,list']);
      expectChallenge(await send(`${srv.url}/`, { method: 'POST', body: uploadForm('file_upload') }), 'upload');
      const user = await send(`${srv.url}/`, { method: 'POST', body: uploadForm('file_upload', { name: 'x', version: '1.0' }), headers: basic('alice', ALICE_PW) });
      expect(user.status).to.equal(400);
    });
  });

  describe('metadata needs `download`, describing the index needs `list`', () => {
    it('-a update,download: names are public, the JSON API (metadata) needs a user like .metadata files', async () => {
      // --no-ui: / is the welcome page (counts only); the UI's pages are covered in ui.test.
      const { srv } = await start(['-P', htpasswd, '-a', 'update,download', '--no-ui']);
      expect((await send(`${srv.url}/simple/`)).status).to.equal(200);
      expect((await send(`${srv.url}/simple/pypi-lite-demo/`)).status).to.equal(200);
      expectChallenge(await send(`${srv.url}/packages/${DEMO_WHEEL}.metadata`), '.metadata');
      expectChallenge(await send(`${srv.url}/pypi/pypi-lite-demo/json`), 'project JSON');
      expectChallenge(await send(`${srv.url}/pypi/pypi-lite-demo/1.0.0/json`), 'release JSON');
      expectChallenge(await send(`${srv.url}/pypi/pypi-lite-demo/json`, { method: 'HEAD' }), 'HEAD project JSON');
      const ok = await send(`${srv.url}/pypi/pypi-lite-demo/json`, { headers: basic('alice', ALICE_PW) });
      expect(ok.status).to.equal(200);
      expect((JSON.parse(ok.body) as { info: { name: string } }).info.name).to.equal('pypi-lite-demo');
      // / and /metrics show names and counts only: public here, like /simple/.
      expect((await send(`${srv.url}/`)).status).to.equal(200);
      expect((await send(`${srv.url}/metrics`)).status).to.equal(200);
    });

    it('-a list: the JSON API, / and /metrics need a user; /health stays open without the counts', async () => {
      const { srv } = await start(['-P', htpasswd, '-a', 'list', '--no-ui']);
      expectChallenge(await send(`${srv.url}/pypi/pypi-lite-demo/json`), 'project JSON');
      expectChallenge(await send(`${srv.url}/`), 'welcome page');
      expectChallenge(await send(`${srv.url}/index.html`), 'welcome page');
      expectChallenge(await send(`${srv.url}/metrics`), 'metrics');
      const health = await send(`${srv.url}/health`);
      expect(health.status).to.equal(200);
      const body = JSON.parse(health.body) as Record<string, unknown>;
      expect(body.status).to.equal('ok');
      expect(body).to.have.property('hashing');
      expect(body).not.to.have.property('projects');
      expect(body).not.to.have.property('files');
      const auth = basic('alice', ALICE_PW);
      const welcome = await send(`${srv.url}/`, { headers: auth });
      expect(welcome.status).to.equal(200);
      expect(welcome.body).to.match(/serving \d+ projects/);
      const metrics = await send(`${srv.url}/metrics`, { headers: auth });
      expect(metrics.status).to.equal(200);
      expect(metrics.body).to.include('pypi_lite_catalog_projects');
      expect((await send(`${srv.url}/pypi/pypi-lite-demo/json`, { headers: auth })).status).to.equal(200);
    });

    it('-a download: the JSON API needs a user, /simple/ does not', async () => {
      const { srv } = await start(['-P', htpasswd, '-a', 'download']);
      expect((await send(`${srv.url}/simple/pypi-lite-demo/`)).status).to.equal(200);
      expectChallenge(await send(`${srv.url}/pypi/pypi-lite-demo/json`), 'project JSON');
    });
  });

  describe('--trust-proxy', () => {
    const CLIENT_A = '203.0.113.5';
    const CLIENT_B = '198.51.100.9';
    const JSON_PATH = '/pypi/pypi-lite-demo/json';
    const via = (client: string, extra: Record<string, string> = {}) => ({ 'X-Forwarded-For': client, ...extra });

    /** Requests through the Express routes and through the fast path (a cached /simple/ page). */
    async function browse(srv: Spawned, client: string): Promise<void> {
      for (let i = 0; i < 3; i++) expect((await send(`${srv.url}/simple/pypi-lite-demo/`, { headers: via(client) })).status).to.equal(200);
      expect((await send(`${srv.url}/pypi/pypi-lite-demo/json`, { headers: via(client) })).status).to.equal(200);
    }

    function remotes(srv: Spawned, p: string): unknown[] {
      return srv.logs().filter((l) => l.msg === 'request' && l.path === p).map((l) => l.remote);
    }

    async function settleLogs(srv: Spawned, p: string, n: number): Promise<void> {
      const deadline = Date.now() + 3000;
      while (remotes(srv, p).length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    }

    it('off by default: X-Forwarded-For is ignored, the log shows the proxy (127.0.0.1)', async () => {
      const { srv } = await start([]);
      await browse(srv, CLIENT_A);
      await settleLogs(srv, JSON_PATH, 1);
      await settleLogs(srv, '/simple/pypi-lite-demo/', 3);
      expect(remotes(srv, '/simple/pypi-lite-demo/')).to.deep.equal(['127.0.0.1', '127.0.0.1', '127.0.0.1']);
      expect(remotes(srv, JSON_PATH)).to.deep.equal(['127.0.0.1']);
    });

    it('--trust-proxy loopback: the log shows the forwarded client, on the fast path too', async () => {
      const { srv } = await start(['--trust-proxy', 'loopback']);
      await browse(srv, `10.9.9.9, ${CLIENT_A}`);
      await settleLogs(srv, JSON_PATH, 1);
      await settleLogs(srv, '/simple/pypi-lite-demo/', 3);
      expect(remotes(srv, '/simple/pypi-lite-demo/')).to.deep.equal([CLIENT_A, CLIENT_A, CLIENT_A]);
      expect(remotes(srv, JSON_PATH)).to.deep.equal([CLIENT_A]);
    });

    it('PYPI_LITE_TRUST_PROXY=2 trusts two hops', async () => {
      const { srv } = await start([], { PYPI_LITE_TRUST_PROXY: '2' });
      expect((await send(`${srv.url}${JSON_PATH}`, { headers: via(`${CLIENT_B}, 10.0.0.1`) })).status).to.equal(200);
      await settleLogs(srv, JSON_PATH, 1);
      expect(remotes(srv, JSON_PATH)).to.deep.equal([CLIENT_B]);
    });

    /** Fail 8 times as client A (the 9th attempt would wait 2 s), then time one failure as client B. */
    async function failureOfB(srv: Spawned): Promise<Got> {
      const wrong = basic('alice', WRONG_PW);
      for (let i = 0; i < 8; i++) expect((await send(`${srv.url}/simple/`, { headers: via(CLIENT_A, wrong) })).status).to.equal(403);
      const b = await send(`${srv.url}/simple/`, { headers: via(CLIENT_B, wrong) });
      expect(b.status).to.equal(403);
      return b;
    }

    it('without it, one bad client behind the proxy slows down everyone', async () => {
      const { srv } = await start(['-P', htpasswd, '-a', 'list']);
      const b = await failureOfB(srv);
      expect(b.ms, 'client B waits for client A\'s failures').to.be.at.least(1900);
    });

    it('with it, the throttle counts per forwarded client', async () => {
      const { srv } = await start(['-P', htpasswd, '-a', 'list', '--trust-proxy', '127.0.0.1']);
      const b = await failureOfB(srv);
      expect(b.ms, 'client B is not slowed down by client A').to.be.below(1000);
      const a = await send(`${srv.url}/simple/`, { headers: via(CLIENT_A, basic('alice', WRONG_PW)) });
      expect(a.ms, 'client A still is').to.be.at.least(1900);
    });

    it('refuses a value that is neither a hop count nor addresses (exit 2, one line)', async () => {
      const root = await tempDir('pypi-lite-access-root-');
      roots.push(root);
      const r = await run(process.execPath, [BIN, 'serve', '-p', '0', '-H', '127.0.0.1', '--trust-proxy', 'loopback,not-an-address', root], { timeoutMs: 15_000 });
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(r.stderr).to.include('--trust-proxy').and.to.include('not-an-address');
    });
  });
});
