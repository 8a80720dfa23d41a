// One replica serving an S3 root (`pypi-lite serve s3://bucket/prefix`) on the Ceph RGW harness,
// with the real clients: pip installs (HTML and JSON pages, hashes, PEP 658 metadata,
// Requires-Python), twine uploads (201/200, 409, --skip-existing, validation errors),
// remove_pkg, the JSON API, the web UI, downloads with Range and ETag, an object put by another
// S3 client, the store stopped and started while serving (503 with a reason, /health, automatic
// recovery), --s3-redirect (presigned URLs, pip follows them; -a download: only for an
// authenticated client), and the one-line refusal to start when the store cannot be used.
// Skips, saying why, where the engine is not installed (`npm run deps:system`).

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { cachedBlobs, StaticUpstream } from './helpers/upstream.js';
import { startRgwOrSkip, type Rgw } from './helpers/rgw.js';
import { BIN, buildProject, describeRun, EXAMPLE, pip, run, spawnServer, tempDir, tw, waitHealthy, type Spawned } from './helpers/server.js';
import { basic, eventually, expectRefused, multipart, passwd, post, sha256, twineFields } from './helpers/upload.js';
import { EXAMPLE_FILES, basename } from './helpers/example.js';

const PW = 's3-Pa55-word';
const JSON_V1 = 'application/vnd.pypi.simple.v1+json';

interface PageFile {
  filename: string;
  url: string;
  hashes: { sha256: string };
  'requires-python'?: string;
  'core-metadata'?: { sha256: string } | boolean;
}

async function page(url: string, project: string, headers: Record<string, string> = {}): Promise<{ status: number; files: PageFile[] }> {
  const res = await fetch(`${url}/simple/${project}/`, { headers: { Accept: JSON_V1, ...headers } });
  if (res.status !== 200) return { status: res.status, files: [] };
  return { status: 200, files: ((await res.json()) as { files: PageFile[] }).files };
}

describe('serving an S3 root (real pip and twine, Ceph RGW)', function () {
  this.timeout(180_000);
  let rgw: Rgw;
  let s3: S3Client;
  let work: string;
  let htpasswd: string;
  let env: Record<string, string>;
  let srv: Spawned;
  /** twine-demo 1.0 (wheel + sdist), 1.0 rebuilt with other bytes, 2.0. */
  let v1: string[];
  let v1b: string[];
  let v2: string[];
  const servers: Spawned[] = [];
  const wheelOf = (files: string[]) => files.find((f) => f.endsWith('.whl'))!;

  async function serve(args: string[], extraEnv: Record<string, string> = {}): Promise<Spawned> {
    const s = await spawnServer(['--disable-fallback', '--s3-path-style', '--cache-dir', path.join(work, `cache-${servers.length}`), ...args], { env: { ...env, ...extraEnv } });
    servers.push(s);
    await waitHealthy(s.url, { idle: true, timeoutMs: 60_000 });
    return s;
  }

  before(async function () {
    work = await tempDir('pypi-lite-s3-serve-');
    rgw = await startRgwOrSkip(this);
    env = rgw.env;
    s3 = rgw.client();
    await rgw.createBucket('pkgs');
    // The example directory, put into the bucket as `aws s3 sync` would.
    for (const f of EXAMPLE_FILES) {
      await s3.send(new PutObjectCommand({ Bucket: 'pkgs', Key: `team/pypi/${f.relPath}`, Body: await fsp.readFile(path.join(EXAMPLE, f.relPath)) }));
    }
    htpasswd = path.join(work, 'htpasswd');
    expect((await passwd(htpasswd, 'alice', PW)).code).to.equal(0);
    [v1, v1b, v2] = await Promise.all([
      buildProject('s3-demo', '1.0', { dir: path.join(work, 'dist-v1'), requiresPython: '>=3.7' }),
      buildProject('s3-demo', '1.0', { dir: path.join(work, 'dist-v1b'), requiresPython: '>=3.8' }),
      buildProject('s3-demo', '2.0', { dir: path.join(work, 'dist-v2') }),
    ]);
    srv = await serve(['-P', htpasswd, '--s3-list-interval', '1', 's3://pkgs/team/pypi']);
  });

  after(async () => {
    for (const s of servers) await s.stop();
    s3?.destroy();
    await rgw?.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('starts from the bucket: banner, /health with the store state, every example file listed with its sha256', async () => {
    expect(srv.output()).to.include('serving s3://pkgs/team/pypi');
    const health = (await (await fetch(`${srv.url}/health`)).json()) as { status: string; files: number; stores: { root: string; state: string }[] };
    expect(health).to.deep.include({ status: 'ok', files: EXAMPLE_FILES.length });
    expect(health.stores).to.deep.equal([{ root: 's3://pkgs/team/pypi', state: 'ok' }]);
    for (const f of EXAMPLE_FILES) {
      const p = await page(srv.url, f.project);
      const listed = p.files.find((x) => x.filename === basename(f.relPath));
      expect(listed, f.relPath).to.not.equal(undefined);
      expect(listed!.hashes.sha256).to.equal(sha256(await fsp.readFile(path.join(EXAMPLE, f.relPath))));
      if (f.requiresPython) expect(listed!['requires-python']).to.equal(f.requiresPython);
      if (f.kind === 'wheel') expect(listed!['core-metadata']).to.be.an('object');
    }
  });

  it('pip installs from it (a project and its dependency; hashes and PEP 658 metadata checked by pip)', async () => {
    const target = path.join(work, 'target-extras');
    const r = await pip(['install', '--no-input', '--target', target, '--index-url', `${srv.url}/simple/`, 'pypi-lite-extras']);
    expect(r.code, describeRun(r)).to.equal(0);
    expect(await fsp.readdir(target)).to.include.members(['pypi_lite_extras-0.1.0.dist-info', 'pypi_lite_demo-2.0.0.dist-info']);
    // The metadata file pip read first is the one inside the wheel.
    const md = await fetch(`${srv.url}/packages/pypi_lite_demo-2.0.0-py3-none-any.whl.metadata`);
    expect(md.status).to.equal(200);
    expect(await md.text()).to.match(/^Metadata-Version: .*\nName: pypi-lite-demo\nVersion: 2\.0\.0/m);
  });

  it('pip honours Requires-Python from the S3 root (Python 3.8 gets pypi-lite-demo 1.1.0)', async () => {
    const dest = path.join(work, 'py38');
    const r = await pip(['download', '--no-deps', '--only-binary', ':all:', '--python-version', '3.8', '-d', dest, '--index-url', `${srv.url}/simple/`, 'pypi-lite-demo']);
    expect(r.code, describeRun(r)).to.equal(0);
    expect(await fsp.readdir(dest)).to.deep.equal(['pypi_lite_demo-1.1.0-py3-none-any.whl']);
  });

  it('downloads stream from the store with ETag, 304, Range (206) and 416', async () => {
    const rel = 'legacy/pypi_lite_extras-0.1.0.tar.gz';
    const bytes = await fsp.readFile(path.join(EXAMPLE, rel));
    const full = await fetch(`${srv.url}/packages/${rel}`);
    expect(full.status).to.equal(200);
    expect(Buffer.from(await full.arrayBuffer()).equals(bytes)).to.equal(true);
    const etag = full.headers.get('etag');
    expect(etag).to.equal(`"${sha256(bytes)}"`);
    expect((await fetch(`${srv.url}/packages/${rel}`, { headers: { 'If-None-Match': etag! } })).status).to.equal(304);
    const part = await fetch(`${srv.url}/packages/${rel}`, { headers: { Range: 'bytes=10-19' } });
    expect(part.status).to.equal(206);
    expect(part.headers.get('content-range')).to.equal(`bytes 10-19/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(10, 20))).to.equal(true);
    const tail = await fetch(`${srv.url}/packages/${rel}`, { headers: { Range: 'bytes=-5' } });
    expect(tail.status).to.equal(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(bytes.length - 5))).to.equal(true);
    const beyond = await fetch(`${srv.url}/packages/${rel}`, { headers: { Range: `bytes=${bytes.length}-` } });
    expect(beyond.status).to.equal(416);
    expect(beyond.headers.get('content-range')).to.equal(`bytes */${bytes.length}`);
  });

  it('twine uploads into the bucket (If-None-Match: *): listed at once, identical again 200, other bytes 409, --skip-existing', async () => {
    const args = (files: string[], extra: string[] = []) => ['upload', '--repository-url', `${srv.url}/`, '--disable-progress-bar', '-u', 'alice', '-p', PW, ...extra, ...files];
    const r = await tw(args(v1));
    expect(r.code, r.out).to.equal(0);
    const listed = new Map((await page(srv.url, 's3-demo')).files.map((f) => [f.filename, f.hashes.sha256]));
    for (const f of v1) {
      expect(listed.get(path.basename(f))).to.equal(sha256(await fsp.readFile(f)));
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'pkgs', Key: `team/pypi/${path.basename(f)}` }));
      expect(head.ContentLength).to.equal((await fsp.stat(f)).size);
    }
    expect((await tw(args(v1))).code, 'identical bytes again').to.equal(0);
    const conflict = await tw(args([wheelOf(v1b)]));
    expect(conflict.code).to.not.equal(0);
    expect(conflict.out, conflict.out).to.match(/409 Conflict .*File already exists: s3_demo-1.0-py3-none-any.whl/);
    const skip = await tw(args([wheelOf(v1b)], ['--skip-existing']));
    expect(skip.code, skip.out).to.equal(0);
    expect(skip.out).to.match(/Skipping s3_demo-1\.0-py3-none-any\.whl because it appears to already exist/);
    // The bucket still holds the first upload's bytes.
    const got = await fetch(`${srv.url}/packages/${path.basename(wheelOf(v1))}`);
    expect(Buffer.from(await got.arrayBuffer()).equals(await fsp.readFile(wheelOf(v1)))).to.equal(true);
    // A form that does not match its file is refused with the reason (nothing stored).
    const bytes = await fsp.readFile(wheelOf(v2));
    const bad = await post(`${srv.url}/`, multipart(twineFields('other-name', '2.0', path.basename(wheelOf(v2)), bytes), { filename: path.basename(wheelOf(v2)), bytes }), basic('alice', PW));
    expectRefused(bad, 400, /Filename does not match the project name/);
    const missing = await s3.send(new HeadObjectCommand({ Bucket: 'pkgs', Key: `team/pypi/${path.basename(wheelOf(v2))}` })).then(
      () => 'stored',
      () => 'absent',
    );
    expect(missing).to.equal('absent');
  });

  it('the JSON API and the web UI show an uploaded project; remove_pkg deletes its objects', async () => {
    const r = await tw(['upload', '--repository-url', `${srv.url}/`, '--disable-progress-bar', '-u', 'alice', '-p', PW, ...v2]);
    expect(r.code, r.out).to.equal(0);
    const json = await fetch(`${srv.url}/pypi/s3-demo/json`);
    expect(json.status).to.equal(200);
    const info = (await json.json()) as { info: { version: string }; urls: { filename: string; digests: { sha256: string } }[] };
    expect(info.info.version).to.equal('2.0');
    expect(info.urls.map((u) => u.filename).sort()).to.deep.equal(v2.map((f) => path.basename(f)).sort());
    const ui = await fetch(`${srv.url}/project/s3-demo/`);
    expect(ui.status).to.equal(200);
    expect(await ui.text()).to.include('s3-demo').and.include('2.0');

    const removed = await post(`${srv.url}/`, multipart([[':action', 'remove_pkg'], ['name', 's3-demo'], ['version', '2.0']], null), basic('alice', PW));
    expect(removed.status, `${removed.status} ${removed.statusText}`).to.equal(200);
    const left = (await page(srv.url, 's3-demo')).files.map((f) => f.filename);
    for (const f of v2) {
      expect(left).to.not.include(path.basename(f));
      const gone = await s3.send(new HeadObjectCommand({ Bucket: 'pkgs', Key: `team/pypi/${path.basename(f)}` })).then(
        () => 'stored',
        () => 'gone',
      );
      expect(gone).to.equal('gone');
    }
  });

  it('an object put by another S3 client appears after the listing interval (hashed, installable)', async () => {
    const wheel = wheelOf(v2);
    const bytes = await fsp.readFile(wheel);
    await s3.send(new PutObjectCommand({ Bucket: 'pkgs', Key: `team/pypi/other-tool/${path.basename(wheel)}`, Body: bytes }));
    const seen = await eventually(async () => (await page(srv.url, 's3-demo')).files.some((f) => f.filename === path.basename(wheel) && f.hashes.sha256 === sha256(bytes)), 10_000, 200);
    expect(seen, 'listed with its sha256 within 10 s (--s3-list-interval 1)').to.equal(true);
    const got = await fetch(`${srv.url}/packages/other-tool/${path.basename(wheel)}`);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).to.equal(true);
  });

  it('store down while serving: pages from memory, downloads and uploads 503 with a reason, /health says so; back by itself', async () => {
    // Everything the pages need is in memory already.
    const before = await fetch(`${srv.url}/simple/pypi-lite-demo/`);
    expect(before.status).to.equal(200);
    await rgw.stopGateway();
    try {
      const pageDown = await fetch(`${srv.url}/simple/pypi-lite-demo/`, { headers: { Accept: 'text/html' } });
      expect(pageDown.status).to.equal(200);
      const t0 = Date.now();
      const dl = await fetch(`${srv.url}/packages/pypi_lite_demo-1.0.0.tar.gz`);
      expect(dl.status).to.equal(503);
      expect(dl.statusText).to.match(/^Package store unavailable: the S3 store cannot be reached/);
      expect(await dl.text()).to.include('Package store unavailable');
      expect(Date.now() - t0, 'a down store fails a download in seconds').to.be.below(15_000);
      const health = (await (await fetch(`${srv.url}/health`)).json()) as { status: string; stores: { state: string; error?: string }[] };
      expect(health.status).to.equal('degraded');
      expect(health.stores[0]).to.include({ state: 'unavailable' });
      expect(health.stores[0].error).to.match(/cannot be reached/);
      expect(await (await fetch(`${srv.url}/metrics`)).text()).to.include('pypi_lite_store_up{root="s3://pkgs/team/pypi"} 0');
      // (The sdist of 2.0: removed above, so the upload must reach the store.)
      const up = await tw(['upload', '--repository-url', `${srv.url}/`, '--disable-progress-bar', '-u', 'alice', '-p', PW, ...v2.filter((f) => !f.endsWith('.whl'))]);
      expect(up.code).to.not.equal(0);
      expect(up.out, up.out).to.match(/503 .*Package store unavailable: the S3 store cannot be reached/);
    } finally {
      await rgw.startGateway();
    }
    const back = await eventually(async () => ((await (await fetch(`${srv.url}/health`)).json()) as { status: string }).status === 'ok', 15_000, 200);
    expect(back, '/health ok again once the store answers').to.equal(true);
    const dl = await fetch(`${srv.url}/packages/pypi_lite_demo-1.0.0.tar.gz`);
    expect(dl.status).to.equal(200);
    expect(Buffer.from(await dl.arrayBuffer()).equals(await fsp.readFile(path.join(EXAMPLE, 'pypi_lite_demo-1.0.0.tar.gz')))).to.equal(true);
    const up = await tw(['upload', '--repository-url', `${srv.url}/`, '--disable-progress-bar', '-u', 'alice', '-p', PW, ...v2.filter((f) => !f.endsWith('.whl'))]);
    expect(up.code, up.out).to.equal(0);
  });

  it('--s3-redirect with -a download: 307 to a presigned URL for an authenticated client only; pip installs through it', async () => {
    const red = await serve(['-P', htpasswd, '-a', 'update,download', '--s3-redirect', '--s3-redirect-expiry', '120', 's3://pkgs/team/pypi']);
    const file = '/packages/pypi_lite_demo-1.1.0-py3-none-any.whl';
    const anon = await fetch(`${red.url}${file}`, { redirect: 'manual' });
    expect(anon.status).to.equal(401);
    expect(anon.headers.get('location')).to.equal(null);
    const ok = await fetch(`${red.url}${file}`, { redirect: 'manual', headers: basic('alice', PW) });
    expect(ok.status).to.equal(307);
    const location = ok.headers.get('location')!;
    expect(location.startsWith(`${rgw.endpoint}/pkgs/team/pypi/pypi_lite_demo-1.1.0-py3-none-any.whl?`)).to.equal(true);
    expect(location).to.match(/X-Amz-Expires=120/);
    expect(ok.headers.get('cache-control')).to.match(/^private/);
    const direct = await fetch(location);
    expect(direct.status).to.equal(200);
    expect(Buffer.from(await direct.arrayBuffer()).equals(await fsp.readFile(path.join(EXAMPLE, 'pypi_lite_demo-1.1.0-py3-none-any.whl')))).to.equal(true);
    const index = `${red.url.replace('http://', `http://alice:${PW}@`)}/simple/`;
    const target = path.join(work, 'target-redirect');
    const r = await pip(['install', '--no-input', '--target', target, '--index-url', index, 'pypi-lite-demo==1.1.0']);
    expect(r.code, describeRun(r)).to.equal(0);
    expect(await fsp.readdir(target)).to.include('pypi_lite_demo-1.1.0.dist-info');
  });

  it('--upstream beside an S3 root: proxied files are cached on local disk, never in the bucket; local names win', async () => {
    const up = new StaticUpstream();
    const wheel = { filename: 'public_only-1.0-py3-none-any.whl', bytes: await fsp.readFile(wheelOf(v2)) };
    up.add('public-only', wheel);
    up.add('pypi-lite-demo', { filename: 'pypi_lite_demo-9.9-py3-none-any.whl', bytes: Buffer.from('not ours') });
    await up.start();
    try {
      const cacheDir = path.join(work, 'cache-upstream');
      const prox = await serve(['--upstream', `${up.url}/simple/`, '--upstream-cache', cacheDir, 's3://pkgs/team/pypi']);
      const pub = await page(prox.url, 'public-only');
      expect(pub.files.map((f) => f.filename)).to.deep.equal([wheel.filename]);
      const got = await fetch(new URL(pub.files[0].url, `${prox.url}/simple/public-only/`));
      expect(got.status).to.equal(200);
      expect(Buffer.from(await got.arrayBuffer()).equals(wheel.bytes)).to.equal(true);
      expect(await cachedBlobs(cacheDir)).to.deep.equal([sha256(wheel.bytes)]);
      const inBucket = await s3.send(new ListObjectsV2Command({ Bucket: 'pkgs' }));
      expect((inBucket.Contents ?? []).map((o) => o.Key).filter((k) => k?.includes('public_only'))).to.deep.equal([]);
      const demo = (await page(prox.url, 'pypi-lite-demo')).files.map((f) => f.filename);
      expect(demo).to.include('pypi_lite_demo-1.0.0.tar.gz').and.not.include('pypi_lite_demo-9.9-py3-none-any.whl');
    } finally {
      await up.stop();
    }
  });

  describe('refuses to start with one line when the store cannot be used', () => {
    async function refused(root: string, extraEnv: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
      const r = await run(process.execPath, [BIN, 'serve', '-p', '0', '-H', '127.0.0.1', '--s3-path-style', '--cache-dir', path.join(work, 'cache-refused'), root], { env: { ...process.env, ...env, ...extraEnv }, timeoutMs: 60_000 });
      return { code: r.code, stderr: r.stderr };
    }
    it('a bucket that does not exist', async () => {
      const r = await refused('s3://no-such-bucket/x', {});
      expect(r.code).to.equal(2);
      expect(r.stderr).to.equal('pypi-lite: cannot use s3://no-such-bucket/x: the S3 bucket no-such-bucket does not exist\n');
    });
    it('wrong credentials', async () => {
      const r = await refused('s3://pkgs/team/pypi', { AWS_SECRET_ACCESS_KEY: 'wrong-secret' });
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(/^pypi-lite: cannot use s3:\/\/pkgs\/team\/pypi: the S3 store refused access to bucket pkgs \(SignatureDoesNotMatch\): check the credentials and the bucket policy\n$/);
    });
    it('a store that does not answer', async () => {
      const r = await refused('s3://pkgs/team/pypi', { AWS_ENDPOINT_URL: 'http://127.0.0.1:9' });
      expect(r.code).to.equal(2);
      expect(r.stderr).to.equal('pypi-lite: cannot use s3://pkgs/team/pypi: the S3 store cannot be reached (ECONNREFUSED)\n');
    });
    it('a malformed S3 root', async () => {
      const r = await refused('s3://user:secret@pkgs/x', {});
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(/^pypi-lite: S3 root "s3:\/\/\*\*\*@pkgs\/x": no credentials or port in the URL/);
      expect(r.stderr).to.not.include('secret');
    });
  });
});
