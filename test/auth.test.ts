// Access control: -a parsing, the answers pip and twine rely on (401 + Basic challenge when
// credentials are missing, 403 when they are wrong), which routes each action protects, a
// password file that is re-read while the server runs, refusing unusable password files,
// slowing down repeated failures, keeping secrets out of the logs, and `pypi-lite passwd`.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Request } from 'express';
import { AuthGuard } from '../lib/auth/guard.js';
import { pino } from 'pino';
import { hashPassword } from '../lib/auth/hashes.js';
import { PasswordFile } from '../lib/auth/password-file.js';
import { parseAuthenticate } from '../lib/core/config.js';
import { HttpError } from '../lib/core/errors.js';
import { BIN, copyExample, run, spawnServer, tempDir, waitHealthy, type RunResult, type Spawned } from './helpers/server.js';
import { basic, eventually, passwd } from './helpers/upload.js';

const ALICE_PW = 'Alice-s3cret-Pw';
const BOB_PW = 'b0b-Another-Secret';
const WRONG_PW = 'Wr0ng-Guess-Xyz';
const DEMO_WHEEL = 'pypi_lite_demo-1.0.0-py3-none-any.whl';

interface Got {
  status: number;
  statusText: string;
  headers: Headers;
  body: Buffer;
  ms: number;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Got> {
  const t0 = performance.now();
  const res = await fetch(url, { headers, redirect: 'manual' });
  const body = Buffer.from(await res.arrayBuffer());
  const got = { status: res.status, statusText: res.statusText, headers: res.headers, body, ms: performance.now() - t0 };
  expect(got.status, `${url}: never a 5xx`).to.be.below(500);
  return got;
}

function expectChallenge(got: Got): void {
  expect(got.status).to.equal(401);
  expect(got.statusText).to.equal('Authentication required');
  expect(got.headers.get('www-authenticate')).to.match(/^Basic realm="pypi-lite"/);
}

function expectForbidden(got: Got, user: string): void {
  expect(got.status).to.equal(403);
  expect(got.statusText).to.equal(`Invalid username or password: user "${user}"`);
  // No challenge on wrong credentials: pip must not loop asking again for the same ones.
  expect(got.headers.get('www-authenticate')).to.equal(null);
}

/** Run `pypi-lite serve` expecting it to exit by itself (killed after 15 s otherwise). */
function serveExpectingExit(args: string[]) {
  return run(process.execPath, [BIN, 'serve', '-p', '0', '-H', '127.0.0.1', ...args], { timeoutMs: 15_000 });
}

describe('access control', function () {
  this.timeout(60_000);

  let work: string;
  let htpasswd: string;

  before(async () => {
    work = await tempDir('pypi-lite-auth-');
    htpasswd = path.join(work, 'htpasswd');
    const r = await passwd(htpasswd, 'alice', ALICE_PW);
    expect(r.code, r.stderr).to.equal(0);
  });

  after(async () => {
    await fsp.rm(work, { recursive: true, force: true });
  });

  describe('-a / --authenticate parsing', () => {
    it('reads update, download,list and "."', () => {
      expect([...parseAuthenticate('update')]).to.deep.equal(['update']);
      expect([...parseAuthenticate('download,list')].sort()).to.deep.equal(['download', 'list']);
      expect([...parseAuthenticate('.')]).to.deep.equal([]);
      expect([...parseAuthenticate('')]).to.deep.equal([]);
      expect([...parseAuthenticate('Update, LIST')].sort()).to.deep.equal(['list', 'update']);
    });

    it('rejects unknown actions', () => {
      expect(() => parseAuthenticate('update,upload')).to.throw(/unknown action "upload"/);
    });

    it('the CLI refuses an unknown action and download/list without a password file (exit 2)', async () => {
      const root = await fsp.mkdtemp(path.join(work, 'root-'));
      const [bogus, noFile, missing] = await Promise.all([
        serveExpectingExit(['-a', 'update,bogus', '-P', htpasswd, root]),
        serveExpectingExit(['-a', 'download', root]),
        serveExpectingExit(['-P', path.join(work, 'no-such-file'), root]),
      ]);
      expect(bogus.code, bogus.stderr).to.equal(2);
      expect(bogus.stderr).to.include('unknown action "bogus"');
      expect(noFile.code, noFile.stderr).to.equal(2);
      expect(noFile.stderr).to.match(/needs a password file.*-P/);
      expect(missing.code, missing.stderr).to.equal(2);
      expect(missing.stderr).to.include('no-such-file').and.to.include('pypi-lite passwd');
    });
  });

  describe('AuthGuard', () => {
    let passwords: PasswordFile;
    before(async () => {
      const file = path.join(work, 'unit-htpasswd');
      await fsp.writeFile(file, `alice:${await hashPassword(ALICE_PW, 4)}\n`);
      passwords = new PasswordFile(file, { log: pino({ level: 'silent' }) });
      await passwords.load();
    });
    after(() => passwords.close());

    const request = (authorization?: string) => ({ headers: authorization ? { authorization } : {}, socket: { remoteAddress: '192.0.2.7' } }) as unknown as Request;

    async function refusal(p: Promise<unknown>): Promise<HttpError> {
      try {
        await p;
      } catch (err) {
        expect(err).to.be.instanceOf(HttpError);
        return err as HttpError;
      }
      throw new Error('expected a refusal');
    }

    it('lets everything through that -a does not name', async () => {
      const guard = new AuthGuard({ authenticate: parseAuthenticate('update'), authenticator: passwords, anonymousUploads: false });
      expect(guard.needs('list')).to.equal(false);
      expect(guard.needs('download')).to.equal(false);
      expect(await guard.check(request(), 'list')).to.equal('');
      expect(await guard.check(request(), 'download')).to.equal('');
    });

    it('401 with a Basic challenge without credentials, 403 with wrong ones, the user name with right ones', async () => {
      const guard = new AuthGuard({ authenticate: parseAuthenticate('update,list'), authenticator: passwords, anonymousUploads: false });
      const missing = await refusal(guard.check(request(), 'list'));
      expect(missing.status).to.equal(401);
      expect(missing.headers['WWW-Authenticate']).to.match(/^Basic realm="pypi-lite"/);
      const wrong = await refusal(guard.check(request(basic('alice', WRONG_PW).Authorization), 'list'));
      expect(wrong.status).to.equal(403);
      expect(wrong.message).not.to.include(WRONG_PW);
      expect(await guard.check(request(basic('alice', ALICE_PW).Authorization), 'update')).to.equal('alice');
    });

    it('refuses uploads when no password file is configured, unless anonymous uploads were asked for', async () => {
      const none = new AuthGuard({ authenticate: parseAuthenticate('update'), authenticator: null, anonymousUploads: false });
      const refused = await refusal(none.check(request(basic('alice', ALICE_PW).Authorization), 'update'));
      expect(refused.status).to.equal(403);
      expect(refused.message).to.include('-P');
      const anonymous = new AuthGuard({ authenticate: parseAuthenticate('.'), authenticator: null, anonymousUploads: true });
      expect(await anonymous.check(request(), 'update')).to.equal('');
    });

    it('checks credentials with whatever Authenticator it is given', async () => {
      const asked: string[] = [];
      const tokens = {
        verify: (user: string, password: string): Promise<boolean> => {
          asked.push(user);
          return Promise.resolve(user === '__token__' && password === 'pypi-secret');
        },
      };
      const guard = new AuthGuard({ authenticate: parseAuthenticate('update,download'), authenticator: tokens, anonymousUploads: false });
      expect(guard.uploadsEnabled()).to.equal(true);
      expect(await guard.check(request(basic('__token__', 'pypi-secret').Authorization), 'download')).to.equal('__token__');
      const wrong = await refusal(guard.check(request(basic('alice', ALICE_PW).Authorization), 'update'));
      expect(wrong.status).to.equal(403);
      expect(asked).to.deep.equal(['__token__', 'alice']);
    });
  });

  describe('a private server (-a update,download,list)', () => {
    let srv: Spawned;
    let root: string;

    before(async () => {
      root = await copyExample();
      srv = await spawnServer(['-a', 'update,download,list', '-P', htpasswd, '--log-level', 'debug', '--disable-fallback', root]);
      await waitHealthy(srv.url);
    });

    after(async () => {
      await srv?.stop();
      await fsp.rm(root, { recursive: true, force: true });
    });

    it('answers 401 with WWW-Authenticate: Basic realm="pypi-lite" without credentials', async () => {
      expectChallenge(await get(`${srv.url}/simple/`));
      expectChallenge(await get(`${srv.url}/simple/pypi-lite-demo/`));
      expectChallenge(await get(`${srv.url}/packages/${DEMO_WHEEL}`));
      expectChallenge(await get(`${srv.url}/pypi/pypi-lite-demo/json`));
    });

    it('answers 401 to an Authorization header that is not Basic or not decodable', async () => {
      expectChallenge(await get(`${srv.url}/simple/`, { Authorization: 'Bearer abc.def' }));
      expectChallenge(await get(`${srv.url}/simple/`, { Authorization: 'Basic %%%not-base64' }));
    });

    it('answers 403 for a wrong password or an unknown user', async () => {
      expectForbidden(await get(`${srv.url}/simple/`, basic('alice', WRONG_PW)), 'alice');
      expectForbidden(await get(`${srv.url}/packages/${DEMO_WHEEL}`, basic('nobody', ALICE_PW)), 'nobody');
    });

    it('serves everything with the right credentials', async () => {
      const auth = basic('alice', ALICE_PW);
      expect((await get(`${srv.url}/simple/`, auth)).status).to.equal(200);
      const page = await get(`${srv.url}/simple/pypi-lite-demo/`, auth);
      expect(page.status).to.equal(200);
      expect(page.body.toString()).to.include(DEMO_WHEEL);
      const file = await get(`${srv.url}/packages/${DEMO_WHEEL}`, auth);
      expect(file.status).to.equal(200);
      expect(file.body).to.deep.equal(await fsp.readFile(path.join(root, DEMO_WHEEL)));
    });

    it('still answers 401 for a page that is now rendered and cached, for HEAD, .metadata and unknown projects', async () => {
      expectChallenge(await get(`${srv.url}/simple/pypi-lite-demo/`));
      const head = await fetch(`${srv.url}/simple/pypi-lite-demo/`, { method: 'HEAD' });
      expect(head.status).to.equal(401);
      expectChallenge(await get(`${srv.url}/packages/${DEMO_WHEEL}.metadata`));
      // Whether a project exists is not revealed without credentials.
      expectChallenge(await get(`${srv.url}/simple/no-such-project/`));
      expectChallenge(await get(`${srv.url}/packages/no-such-file-1.0.tar.gz`));
    });

    it('keeps /health open for load balancers', async () => {
      expect((await get(`${srv.url}/health`)).status).to.equal(200);
    });

    it('accepts a password containing ":" (only the first ":" separates the user)', async () => {
      const r = await passwd(htpasswd, 'carol', 'pa:ss:word');
      expect(r.code, r.stderr).to.equal(0);
      const ok = await eventually(async () => (await get(`${srv.url}/simple/`, basic('carol', 'pa:ss:word'))).status === 200, 4000, 100);
      expect(ok, 'carol gets in').to.equal(true);
      expectForbidden(await get(`${srv.url}/simple/`, basic('carol', 'pa')), 'carol');
    });

    it('re-reads the password file live: a user added with `pypi-lite passwd` gets in within ~2 s (3 s allowed), and out again after --delete', async () => {
      expectForbidden(await get(`${srv.url}/simple/`, basic('bob', BOB_PW)), 'bob');
      const added = await passwd(htpasswd, 'bob', BOB_PW);
      expect(added.code, added.stderr).to.equal(0);
      const t0 = Date.now();
      const in_ = await eventually(async () => (await get(`${srv.url}/simple/`, basic('bob', BOB_PW))).status === 200, 3000, 100);
      expect(in_, 'bob was let in within 3 s').to.equal(true);
      expect(Date.now() - t0).to.be.below(3000);

      const deleted = await passwd(htpasswd, 'bob', null, ['--delete']);
      expect(deleted.code, deleted.stderr).to.equal(0);
      const t1 = Date.now();
      const out = await eventually(async () => (await get(`${srv.url}/simple/`, basic('bob', BOB_PW))).status === 403, 3000, 100);
      expect(out, 'bob was shut out within 3 s').to.equal(true);
      expect(Date.now() - t1).to.be.below(3000);
      expect((await get(`${srv.url}/simple/`, basic('alice', ALICE_PW))).status).to.equal(200);
    });

    it('applies the usable lines when the file is edited into something partly unusable: a removed user is out at once', async () => {
      // Regression (issue 9 item 4): a bad line used to keep the previous users, removed ones included.
      const good = await fsp.readFile(htpasswd, 'utf8');
      try {
        const bob = await passwd(htpasswd, 'bob', BOB_PW);
        expect(bob.code, bob.stderr).to.equal(0);
        expect(await eventually(async () => (await get(`${srv.url}/simple/`, basic('bob', BOB_PW))).status === 200, 4000, 100), 'bob gets in').to.equal(true);
        const withBob = await fsp.readFile(htpasswd, 'utf8');
        const withoutBob = withBob.split('\n').filter((l) => !l.startsWith('bob:')).join('\n');
        await fsp.writeFile(htpasswd, `${withoutBob}mallory:mallorySecret9\n`);
        const noticed = await eventually(() => srv.output().includes('password file reloaded WITHOUT its unusable lines'), 4000, 100);
        expect(noticed, 'the server reports the unusable line').to.equal(true);
        expect(srv.output()).to.include(`${htpasswd}:${withoutBob.split('\n').filter(Boolean).length + 1}:`);
        expect(srv.output()).not.to.include('mallorySecret9');
        expectForbidden(await get(`${srv.url}/simple/`, basic('bob', BOB_PW)), 'bob');
        expect((await get(`${srv.url}/simple/`, basic('alice', ALICE_PW))).status).to.equal(200);
        expectForbidden(await get(`${srv.url}/simple/`, basic('mallory', 'mallorySecret9')), 'mallory');
      } finally {
        await fsp.writeFile(htpasswd, good);
      }
    });

    it('never writes a password or the Authorization header to its output', async () => {
      // A failed and a successful upload attempt too, so that the upload path is covered.
      const form = new FormData();
      form.set(':action', 'file_upload');
      const failed = await fetch(`${srv.url}/`, { method: 'POST', body: form, headers: basic('alice', WRONG_PW) });
      expect(failed.status).to.equal(403);
      const bad = await fetch(`${srv.url}/`, { method: 'POST', body: form, headers: basic('alice', ALICE_PW) });
      expect(bad.status).to.equal(400);
      await new Promise((r) => setTimeout(r, 200));
      const out = srv.output();
      expect(out).to.include('"path":"/simple/"'); // the requests were logged...
      for (const secret of [ALICE_PW, BOB_PW, WRONG_PW, 'pa:ss:word', 'mallorySecret9']) expect(out, 'a password in the output').not.to.include(secret);
      for (const [user, pw] of [
        ['alice', ALICE_PW],
        ['alice', WRONG_PW],
        ['bob', BOB_PW],
      ]) {
        const b64 = Buffer.from(`${user}:${pw}`).toString('base64');
        expect(out, 'an Authorization header in the output').not.to.include(b64);
      }
      expect(out.toLowerCase()).not.to.include('authorization');
    });
  });

  describe('servers protecting one action, and servers without a password file', () => {
    let root: string;
    let list: Spawned;
    let download: Spawned;
    let closed: Spawned;
    let open: Spawned;

    before(async () => {
      root = await copyExample();
      // Started together: each spawn costs a Node start-up.
      [list, download, closed, open] = await Promise.all([
        spawnServer(['-a', 'list', '-P', htpasswd, '--disable-fallback', root]),
        spawnServer(['-a', 'download', '-P', htpasswd, '--disable-fallback', root]),
        spawnServer(['-a', '.', '--disable-fallback', root]),
        spawnServer(['-a', '.', '-P', '.', '--disable-fallback', root]),
      ]);
      await Promise.all([list, download, closed, open].map((s) => waitHealthy(s.url)));
    });

    after(async () => {
      await Promise.all([list, download, closed, open].map((s) => s?.stop()));
      await fsp.rm(root, { recursive: true, force: true });
    });

    it('-a list: /simple/ needs credentials, /packages/ does not', async () => {
      expectChallenge(await get(`${list.url}/simple/`));
      expect((await get(`${list.url}/simple/pypi-lite-demo/`, basic('alice', ALICE_PW))).status).to.equal(200);
      // Now rendered and cached: still not served without credentials.
      expectChallenge(await get(`${list.url}/simple/pypi-lite-demo/`));
      expectChallenge(await get(`${list.url}/simple/pypi-lite-demo/`, { Accept: 'application/vnd.pypi.simple.v1+json' }));
      const file = await get(`${list.url}/packages/${DEMO_WHEEL}`);
      expect(file.status).to.equal(200);
      expect(file.body).to.deep.equal(await fsp.readFile(path.join(root, DEMO_WHEEL)));
    });

    it('-a download: /packages/ needs credentials, /simple/ does not', async () => {
      expect((await get(`${download.url}/simple/`)).status).to.equal(200);
      expect((await get(`${download.url}/simple/pypi-lite-demo/`)).status).to.equal(200);
      expectChallenge(await get(`${download.url}/packages/${DEMO_WHEEL}`));
      expectForbidden(await get(`${download.url}/packages/${DEMO_WHEEL}`, basic('alice', WRONG_PW)), 'alice');
      const file = await get(`${download.url}/packages/${DEMO_WHEEL}`, basic('alice', ALICE_PW));
      expect(file.status).to.equal(200);
      expect(file.body).to.deep.equal(await fsp.readFile(path.join(root, DEMO_WHEEL)));
    });

    it('-a . alone does not open uploads to everyone (403 with a hint about -P); -a . -P . does', async () => {
      const form = () => {
        const f = new FormData();
        f.set(':action', 'file_upload');
        f.set('name', 'x');
        f.set('version', '1.0');
        return f;
      };
      const refused = await fetch(`${closed.url}/`, { method: 'POST', body: form() });
      expect(refused.status).to.equal(403);
      expect(refused.statusText).to.match(/^Uploads are disabled: .*-P <htpasswd file>/);
      // The anonymous server gets past access control to the form checks.
      const checked = await fetch(`${open.url}/`, { method: 'POST', body: form() });
      expect(checked.status).to.equal(400);
      expect(checked.statusText).to.equal('No file uploaded in the "content" field');
    });
  });

  describe('repeated failures', () => {
    it('are free 5 times, then the answers are slowed down (>= 200 ms, growing); a success resets', async () => {
      const root = await fsp.mkdtemp(path.join(work, 'root-'));
      const srv = await spawnServer(['-a', 'list', '-P', htpasswd, '--disable-fallback', root]);
      try {
        await waitHealthy(srv.url);
        // Warm up (first request, first bcrypt) so that only the throttle is measured below.
        expect((await get(`${srv.url}/simple/`, basic('alice', ALICE_PW))).status).to.equal(200);
        const wrong = basic('alice', WRONG_PW);
        const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
        const free: number[] = [];
        for (let i = 1; i <= 5; i++) {
          const got = await get(`${srv.url}/simple/`, wrong);
          expectForbidden(got, 'alice');
          free.push(got.ms);
        }
        expect(median(free), `the first 5 failures are not delayed: ${free.map(Math.round).join(', ')} ms`).to.be.below(200);
        const sixth = await get(`${srv.url}/simple/`, wrong);
        expectForbidden(sixth, 'alice');
        expect(sixth.ms, 'the 6th failure is delayed').to.be.at.least(200);
        const seventh = await get(`${srv.url}/simple/`, wrong);
        expectForbidden(seventh, 'alice');
        expect(seventh.ms, 'the delay grows').to.be.at.least(400);
        // The right password still works (after the wait), and forgives the past.
        const ok = await get(`${srv.url}/simple/`, basic('alice', ALICE_PW));
        expect(ok.status).to.equal(200);
        const fresh: number[] = [];
        for (let i = 0; i < 3; i++) {
          const got = await get(`${srv.url}/simple/`, wrong);
          expectForbidden(got, 'alice');
          fresh.push(got.ms);
        }
        expect(median(fresh), `after a success, failures start afresh: ${fresh.map(Math.round).join(', ')} ms`).to.be.below(200);
      } finally {
        await srv.stop();
      }
    });
  });

  describe('unusable password files', () => {
    let plainFile: string;
    let desFile: string;
    let plain: RunResult;
    let des: RunResult;

    before(async () => {
      const root = await fsp.mkdtemp(path.join(work, 'root-'));
      plainFile = path.join(work, 'plain-htpasswd');
      await fsp.writeFile(plainFile, `${(await fsp.readFile(htpasswd, 'utf8')).split('\n')[0]}\n# a comment\nbob:plaintextSecret42\n`);
      desFile = path.join(work, 'des-htpasswd');
      // `openssl passwd -crypt` style: 2 salt characters + 11 hash characters.
      await fsp.writeFile(desFile, `carol:rqXexS6ZhobKA\n`);
      [plain, des] = await Promise.all([serveExpectingExit(['-P', plainFile, root]), serveExpectingExit(['-P', desFile, root])]);
    });

    it('refuses to start (exit 2) on a plaintext entry, naming the file, line and user but not the secret', () => {
      expect(plain.code, plain.stdout + plain.stderr).to.equal(2);
      expect(plain.stderr).to.include(`${plainFile}:3:`).and.to.include('"bob"').and.to.match(/plaintext/);
      expect(plain.stdout + plain.stderr).not.to.include('plaintextSecret42');
      expect(plain.stdout).not.to.include('serving');
    });

    it('refuses to start (exit 2) on a crypt(3) DES entry', () => {
      expect(des.code, des.stdout + des.stderr).to.equal(2);
      expect(des.stderr).to.include(`${desFile}:1:`).and.to.include('"carol"').and.to.match(/crypt/);
      expect(des.stdout + des.stderr).not.to.include('rqXexS6ZhobKA');
    });
  });

  describe('pypi-lite passwd', () => {
    it('creates a 0600 bcrypt file, updates in place, and never prints the password', async () => {
      const file = path.join(work, 'passwd-test');
      const r1 = await passwd(file, 'alice', ALICE_PW);
      expect(r1.code, r1.stderr).to.equal(0);
      expect(r1.stdout + r1.stderr).not.to.include(ALICE_PW);
      expect((await fsp.stat(file)).mode & 0o777).to.equal(0o600);
      const r2 = await passwd(file, 'bob', BOB_PW);
      expect(r2.code, r2.stderr).to.equal(0);
      const before = (await fsp.readFile(file, 'utf8')).split('\n');
      expect(before.filter(Boolean).map((l) => l.split(':')[0])).to.deep.equal(['alice', 'bob']);
      const r3 = await passwd(file, 'alice', 'a-new-password');
      expect(r3.code, r3.stderr).to.equal(0);
      const after = (await fsp.readFile(file, 'utf8')).split('\n');
      expect(after.filter(Boolean).map((l) => l.split(':')[0])).to.deep.equal(['alice', 'bob']);
      expect(after[0]).not.to.equal(before[0]);
      expect(after[1]).to.equal(before[1]);
    });

    it('--delete removes one user and keeps the others byte for byte', async () => {
      const file = path.join(work, 'passwd-delete');
      const hashes = await Promise.all([ALICE_PW, BOB_PW, 'carol-pw'].map((pw) => hashPassword(pw, 4)));
      await fsp.writeFile(file, `# team\nalice:${hashes[0]}\nbob:${hashes[1]}\ncarol:${hashes[2]}\n`, { mode: 0o600 });
      const lines = (await fsp.readFile(file, 'utf8')).split('\n');
      const r = await passwd(file, 'bob', null, ['--delete']);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.include('Deleted user bob');
      expect((await fsp.readFile(file, 'utf8')).split('\n')).to.deep.equal(lines.filter((l) => !l.startsWith('bob:')));
      const short = await passwd(file, 'carol', null, ['-D']);
      expect(short.code, short.stderr).to.equal(0);
      expect((await fsp.readFile(file, 'utf8')).split('\n').filter(Boolean)).to.deep.equal(lines.slice(0, 2));
    });

    it('--delete of an unknown user or a missing file fails with exit 2', async () => {
      const file = path.join(work, 'passwd-delete-missing');
      await fsp.writeFile(file, `alice:${await hashPassword(ALICE_PW, 4)}\n`);
      const [unknown, nofile] = await Promise.all([passwd(file, 'zed', null, ['--delete']), passwd(path.join(work, 'nope'), 'alice', null, ['--delete'])]);
      expect(unknown.code).to.equal(2);
      expect(unknown.stderr).to.include('user "zed" is not in');
      expect(nofile.code).to.equal(2);
      expect(nofile.stderr).to.include('does not exist');
    });

    it('refuses an empty password and invalid user names', async () => {
      const file = path.join(work, 'passwd-invalid');
      const [empty, colon] = await Promise.all([passwd(file, 'alice', ''), passwd(file, 'al:ice', 'pw')]);
      expect(empty.code).to.equal(2);
      expect(empty.stderr).to.include('empty password');
      expect(colon.code).to.equal(2);
      expect(colon.stderr).to.include('invalid user name');
      expect(await fsp.stat(file).then(() => true, () => false)).to.equal(false);
    });
  });
});
