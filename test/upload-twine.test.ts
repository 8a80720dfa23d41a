// Uploads with the real twine (Debian's 4.0.2) to the real server, and installs with the real pip:
// htpasswd users made with `pypi-lite passwd`, --skip-existing, --overwrite, wrong and missing
// credentials, private indexes (-a update,download,list), /legacy/, .pypirc, and what twine
// prints when the server refuses.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { buildProject, pip, spawnServer, tempDir, tw, waitHealthy, type Spawned } from './helpers/server.js';
import { basic, multipart, passwd, post, pyArchive, sha256, tempUploads, twineFields } from './helpers/upload.js';

const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';
const PW = 'alice-Pa55-word';

function uploadArgs(url: string, files: string[], extra: string[] = []): string[] {
  return ['upload', '--repository-url', url, '--disable-progress-bar', ...extra, ...files];
}

/** filename -> sha256 of what /simple/<project>/ lists (with optional credentials). */
async function listed(url: string, project: string, headers: Record<string, string> = {}): Promise<Map<string, string>> {
  const res = await fetch(`${url}/simple/${project}/`, { headers: { Accept: SIMPLE_JSON, ...headers } });
  if (res.status === 404) return new Map();
  expect(res.status, `GET /simple/${project}/: ${res.status} ${res.statusText}`).to.equal(200);
  const page = (await res.json()) as { files: { filename: string; hashes: { sha256: string } }[] };
  return new Map(page.files.map((f) => [f.filename, f.hashes.sha256]));
}

async function digestsOf(files: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of files) out.set(path.basename(f), sha256(await fsp.readFile(f)));
  return out;
}

describe('twine upload to pypi-lite (real twine, real pip)', function () {
  this.timeout(120_000);

  let work: string;
  let htpasswd: string;
  /** twine-demo 1.0, wheel and sdist. */
  let v1: string[];
  /** twine-demo 1.0 again, rebuilt with other content (other bytes, same names). */
  let v1b: string[];
  let v2: string[];
  let v3: string[];
  const servers: Spawned[] = [];

  async function serve(args: string[]): Promise<{ srv: Spawned; root: string }> {
    const root = await fsp.mkdtemp(path.join(work, 'root-'));
    const srv = await spawnServer([...args, '--disable-fallback', root]);
    servers.push(srv);
    await waitHealthy(srv.url);
    return { srv, root };
  }

  const wheelOf = (files: string[]) => files.find((f) => f.endsWith('.whl'))!;

  before(async () => {
    work = await tempDir('pypi-lite-twine-');
    htpasswd = path.join(work, 'htpasswd');
    const made = await passwd(htpasswd, 'alice', PW);
    expect(made.code, made.stderr).to.equal(0);
    expect(await fsp.readFile(htpasswd, 'utf8')).to.match(/^alice:\$2y\$04\$/);
    [v1, v1b, v2, v3] = await Promise.all([
      // Two builds of one release with other metadata: same file names, other bytes.
      buildProject('twine-demo', '1.0', { dir: path.join(work, 'dist-v1'), requiresPython: '>=3.7' }),
      buildProject('twine-demo', '1.0', { dir: path.join(work, 'dist-v1b'), requiresPython: '>=3.8' }),
      buildProject('twine-demo', '2.0', { dir: path.join(work, 'dist-v2') }),
      buildProject('twine-demo', '3.0', { dir: path.join(work, 'dist-v3') }),
    ]);
    expect(v1.map((f) => path.basename(f)).sort()).to.deep.equal([path.basename(wheelOf(v1)), 'twine_demo-1.0.tar.gz'].sort());
    expect(path.basename(wheelOf(v1))).to.match(/^twine_demo-1\.0-py3-none-any\.whl$/);
    expect(v1b.map((f) => path.basename(f)).sort()).to.deep.equal(v1.map((f) => path.basename(f)).sort());
    expect(sha256(await fsp.readFile(wheelOf(v1b)))).not.to.equal(sha256(await fsp.readFile(wheelOf(v1))));
  });

  after(async () => {
    for (const s of servers) await s.stop();
    for (const s of servers) expect(s.output(), 'the password never appears in the server output').not.to.include(PW);
    await fsp.rm(work, { recursive: true, force: true });
  });

  describe('a server with -P htpasswd (uploads need a password)', () => {
    let srv: Spawned;
    let root: string;
    before(async () => {
      ({ srv, root } = await serve(['-P', htpasswd]));
    });

    it('twine uploads a wheel and an sdist; /simple/ lists them at once with their sha256', async () => {
      const r = await tw(uploadArgs(`${srv.url}/`, v1, ['-u', 'alice', '-p', PW]));
      expect(r.code, r.out).to.equal(0);
      expect(r.out).to.include('Uploading twine_demo-1.0-py3-none-any.whl').and.to.include('Uploading twine_demo-1.0.tar.gz');
      // No polling: the upload is in the index before twine hears 200.
      expect(await listed(srv.url, 'twine-demo')).to.deep.equal(await digestsOf(v1));
      for (const f of v1) expect(await fsp.readFile(path.join(root, path.basename(f)))).to.deep.equal(await fsp.readFile(f));
    });

    it('pip installs the uploaded project from the same server', async () => {
      const target = path.join(work, 'pip-target-public');
      const r = await pip(['install', '--no-input', '--target', target, '--index-url', `${srv.url}/simple/`, 'twine-demo']);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(await fsp.readFile(path.join(target, 'twine_demo', '__init__.py'), 'utf8')).to.equal('__version__ = "1.0"\n');
      expect(await fsp.readdir(target)).to.include('twine_demo-1.0.dist-info');
    });

    it('a re-upload of identical bytes succeeds', async () => {
      const r = await tw(uploadArgs(`${srv.url}/`, v1, ['-u', 'alice', '-p', PW]));
      expect(r.code, r.out).to.equal(0);
      expect(await listed(srv.url, 'twine-demo')).to.deep.equal(await digestsOf(v1));
    });

    it('a different file under an existing name fails with 409 "File already exists"', async () => {
      const r = await tw(uploadArgs(`${srv.url}/`, [wheelOf(v1b)], ['-u', 'alice', '-p', PW]));
      expect(r.code, r.out).not.to.equal(0);
      expect(r.out).to.include('409').and.to.include('File already exists');
      expect(await listed(srv.url, 'twine-demo')).to.deep.equal(await digestsOf(v1));
    });

    it('--skip-existing skips it and exits 0', async () => {
      const r = await tw(uploadArgs(`${srv.url}/`, v1b, ['-u', 'alice', '-p', PW, '--skip-existing']));
      expect(r.code, r.out).to.equal(0);
      expect(r.out).to.match(/Skipping twine_demo-1\.0-py3-none-any\.whl because it appears to already exist/);
      expect(r.out).to.match(/Skipping twine_demo-1\.0\.tar\.gz because it appears to already exist/);
      expect(await listed(srv.url, 'twine-demo')).to.deep.equal(await digestsOf(v1));
    });

    it('a wrong password fails with 403 and says why', async () => {
      const r = await tw(uploadArgs(`${srv.url}/`, v2, ['-u', 'alice', '-p', 'not-the-password']));
      expect(r.code, r.out).not.to.equal(0);
      expect(r.out).to.include('403').and.to.include('Invalid username or password');
      expect([...(await listed(srv.url, 'twine-demo')).keys()].some((f) => f.includes('2.0'))).to.equal(false);
    });

    it('an unknown user fails with 403 too', async () => {
      const r = await tw(uploadArgs(`${srv.url}/`, v2, ['-u', 'mallory', '-p', PW]));
      expect(r.code, r.out).not.to.equal(0);
      expect(r.out).to.include('403').and.to.include('Invalid username or password');
    });

    it('/legacy/ works as the repository URL', async () => {
      const r = await tw(uploadArgs(`${srv.url}/legacy/`, v2, ['-u', 'alice', '-p', PW]));
      expect(r.code, r.out).to.equal(0);
      const files = await listed(srv.url, 'twine-demo');
      for (const [name, digest] of await digestsOf(v2)) expect(files.get(name), name).to.equal(digest);
    });

    it('a .pypirc section ([pypi-lite]) works with --config-file and -r', async () => {
      const pypirc = path.join(work, 'pypirc');
      await fsp.writeFile(
        pypirc,
        `[distutils]\nindex-servers =\n    pypi-lite\n\n[pypi-lite]\nrepository = ${srv.url}/\nusername = alice\npassword = ${PW}\n`,
      );
      const r = await tw(['upload', '--config-file', pypirc, '-r', 'pypi-lite', '--disable-progress-bar', ...v3]);
      expect(r.code, r.out).to.equal(0);
      expect(r.out).to.include(`Uploading distributions to ${srv.url}/`);
      const files = await listed(srv.url, 'twine-demo');
      for (const [name, digest] of await digestsOf(v3)) expect(files.get(name), name).to.equal(digest);
    });
  });

  describe('a server with --overwrite', () => {
    it('replaces an existing file with the new bytes', async () => {
      const { srv, root } = await serve(['-P', htpasswd, '--overwrite']);
      const first = await tw(uploadArgs(`${srv.url}/`, v1, ['-u', 'alice', '-p', PW]));
      expect(first.code, first.out).to.equal(0);
      expect(await listed(srv.url, 'twine-demo')).to.deep.equal(await digestsOf(v1));
      const second = await tw(uploadArgs(`${srv.url}/`, v1b, ['-u', 'alice', '-p', PW]));
      expect(second.code, second.out).to.equal(0);
      expect(await listed(srv.url, 'twine-demo')).to.deep.equal(await digestsOf(v1b));
      for (const f of v1b) expect(await fsp.readFile(path.join(root, path.basename(f)))).to.deep.equal(await fsp.readFile(f));
      expect(await tempUploads(root)).to.deep.equal([]);
    });
  });

  describe('a private server: -a update,download,list -P htpasswd', () => {
    let srv: Spawned;
    before(async () => {
      ({ srv } = await serve(['-a', 'update,download,list', '-P', htpasswd]));
    });

    it('twine with -u/-p uploads', async () => {
      const r = await tw(uploadArgs(`${srv.url}/`, v1, ['-u', 'alice', '-p', PW]));
      expect(r.code, r.out).to.equal(0);
      expect(await listed(srv.url, 'twine-demo', basic('alice', PW))).to.deep.equal(await digestsOf(v1));
    });

    it('twine without credentials fails and uploads nothing', async () => {
      const r = await tw(uploadArgs(`${srv.url}/`, v2));
      expect(r.code, r.out).not.to.equal(0);
      const files = await listed(srv.url, 'twine-demo', basic('alice', PW));
      expect([...files.keys()].some((f) => f.includes('2.0'))).to.equal(false);
    });

    it('an upload without an Authorization header is answered 401 with a Basic challenge', async () => {
      const bytes = await fsp.readFile(wheelOf(v2));
      const name = path.basename(wheelOf(v2));
      const ans = await post(`${srv.url}/`, multipart(twineFields('twine-demo', '2.0', name, bytes), { filename: name, bytes }));
      expect(ans.status).to.equal(401);
      expect(ans.statusText).to.equal('Authentication required');
      expect(ans.headers.get('www-authenticate')).to.match(/^Basic realm="pypi-lite"/);
    });

    it('pip without credentials fails: the index answers 401', async () => {
      const target = path.join(work, 'pip-target-anon');
      const since = Date.now();
      const r = await pip(['install', '--no-input', '--target', target, '--index-url', `${srv.url}/simple/`, 'twine-demo']);
      expect(r.code, r.stdout + r.stderr).not.to.equal(0);
      const refused = await srv.waitForLogs((l) => l.path === '/simple/twine-demo/' && typeof l.time === 'number' && l.time >= since);
      expect(refused.length, JSON.stringify(srv.logs().slice(-20))).to.be.greaterThan(0);
      expect(refused.every((l) => l.status === 401)).to.equal(true);
      expect(await fsp.readdir(target).catch(() => [])).not.to.include('twine_demo');
    });

    it('pip with the credentials in the index URL installs', async () => {
      const target = path.join(work, 'pip-target-private');
      const r = await pip(['install', '--no-input', '--target', target, '--index-url', `http://alice:${PW}@127.0.0.1:${srv.port}/simple/`, 'twine-demo']);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(await fsp.readFile(path.join(target, 'twine_demo', '__init__.py'), 'utf8')).to.equal('__version__ = "1.0"\n');
    });
  });

  describe('who may upload', () => {
    it('without a password file, uploads are refused with 403 and a hint about -P', async () => {
      const { srv, root } = await serve([]);
      const r = await tw(uploadArgs(`${srv.url}/`, v1, ['-u', 'alice', '-p', PW]));
      expect(r.code, r.out).not.to.equal(0);
      expect(r.out).to.include('403').and.to.include('Uploads are disabled').and.to.include('-P');
      expect((await fsp.readdir(root)).filter((n) => !n.startsWith('.'))).to.deep.equal([]);
    });

    it('-a . -P . allows anonymous uploads', async () => {
      const { srv, root } = await serve(['-a', '.', '-P', '.']);
      // twine insists on some credentials; the server does not look at them.
      const r = await tw(uploadArgs(`${srv.url}/`, v1, ['-u', 'anyone', '-p', 'anything']));
      expect(r.code, r.out).to.equal(0);
      expect(await listed(srv.url, 'twine-demo')).to.deep.equal(await digestsOf(v1));
      // And truly anonymous: no Authorization header at all.
      const bytes = await fsp.readFile(wheelOf(v2));
      const name = path.basename(wheelOf(v2));
      const ans = await post(`${srv.url}/`, multipart(twineFields('twine-demo', '2.0', name, bytes), { filename: name, bytes }));
      expect(ans.status, ans.statusText).to.equal(200);
      expect(await fsp.readFile(path.join(root, name))).to.deep.equal(bytes);
    });
  });

  describe('refusals of the form and the content as twine shows them', () => {
    let srv: Spawned;
    let root: string;
    before(async () => {
      ({ srv, root } = await serve(['-P', htpasswd]));
    });

    async function wheelFile(name: string, pkginfo: string): Promise<string> {
      const filename = `${name.replace(/-/g, '_')}-1.0-py3-none-any.whl`;
      const bytes = await pyArchive(work, filename, { kind: 'wheel', name, version: '1.0', pkginfo });
      const file = path.join(await fsp.mkdtemp(path.join(work, 'form-')), filename);
      await fsp.writeFile(file, bytes);
      return file;
    }

    it('a README (description) over 1 MiB: twine shows 400 and the reason, nothing is stored', async () => {
      const file = await wheelFile('long-readme', `Metadata-Version: 2.1\nName: long-readme\nVersion: 1.0\nSummary: x\n\n${'r'.repeat(1536 * 1024)}\n`);
      const r = await tw(uploadArgs(`${srv.url}/`, [file], ['-u', 'alice', '-p', PW]));
      expect(r.code, r.out).not.to.equal(0);
      expect(r.out).to.include('400').and.to.include('A form field is too large: description is larger than 1048576 bytes');
      expect(r.out).not.to.match(/ConnectionError|Connection aborted|reset by peer|BrokenPipe/i);
      expect((await fsp.readdir(root)).filter((n) => !n.startsWith('.'))).to.deep.equal([]);
      expect(await tempUploads(root)).to.deep.equal([]);
    });
  });

  describe('--max-upload-size as twine sees it', () => {
    let srv: Spawned;
    let root: string;
    before(async () => {
      ({ srv, root } = await serve(['-P', htpasswd, '--max-upload-size', '100K']));
    });

    async function bigWheel(name: string, randomKiB: number): Promise<string> {
      const filename = `${name.replace(/-/g, '_')}-1.0-py3-none-any.whl`;
      const bytes = await pyArchive(work, filename, { kind: 'wheel', name, version: '1.0', extra: randomBytes(randomKiB * 1024).toString('hex') });
      const file = path.join(await fsp.mkdtemp(path.join(work, 'big-')), filename);
      await fsp.writeFile(file, bytes);
      return file;
    }

    it('a file somewhat over the limit: twine shows 413 and the reason', async () => {
      const file = await bigWheel('big-demo', 300);
      expect((await fsp.stat(file)).size).to.be.greaterThan(100 * 1024);
      const r = await tw(uploadArgs(`${srv.url}/`, [file], ['-u', 'alice', '-p', PW]));
      expect(r.code, r.out).not.to.equal(0);
      expect(r.out).to.include('413').and.to.include('Upload too large');
      expect(r.out).not.to.match(/ConnectionError|Connection aborted|reset by peer|BrokenPipe/i);
      expect((await fsp.readdir(root)).filter((n) => !n.startsWith('.'))).to.deep.equal([]);
      expect(await tempUploads(root)).to.deep.equal([]);
    });

    it('a file far over the limit (refused on its Content-Length, never stored): twine still shows 413 and the reason', async () => {
      const file = await bigWheel('huge-demo', 12 * 1024);
      expect((await fsp.stat(file)).size).to.be.greaterThan(9 * 1024 * 1024);
      const r = await tw(uploadArgs(`${srv.url}/`, [file], ['-u', 'alice', '-p', PW]));
      expect(r.code, r.out).not.to.equal(0);
      expect(r.out).to.include('413').and.to.include('Upload too large: limit is 102400 bytes');
      expect(r.out).not.to.match(/ConnectionError|Connection aborted|reset by peer|BrokenPipe/i);
      expect((await fsp.readdir(root)).filter((n) => !n.startsWith('.'))).to.deep.equal([]);
      expect(await tempUploads(root)).to.deep.equal([]);
    });
  });
});
