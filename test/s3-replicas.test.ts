// Two pypi-lite replicas on one bucket (Ceph RGW harness), real processes and real clients: an
// upload through A is installable through B within 2 s (the change feed, not the periodic
// listing, which runs only every 10 s here); a removal and a yank too; of two uploads racing
// through A and B exactly one wins, the other refused as on one box (same file name; two sdists of one release; two spellings of
// one file); an object put by another S3 client appears on both; a new replica's start is the
// listing plus the bucket's index (no object read for a digest); the store down and back.
// Skips, saying why, where the engine is not installed (`npm run deps:system`).

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startRgwOrSkip, type Rgw } from './helpers/rgw.js';
import { buildProject, describeRun, EXAMPLE, pip, spawnServer, tempDir, twine, waitHealthy, type Spawned } from './helpers/server.js';
import { basic, multipart, passwd, post, pyArchive, sha256, twineFields, type Answer } from './helpers/upload.js';
import { EXAMPLE_FILES, basename } from './helpers/example.js';

const PW = 'replica-Pa55';
const JSON_V1 = 'application/vnd.pypi.simple.v1+json';
const ROOT = 's3://pkgs/pypi';

interface PageFile {
  filename: string;
  hashes: { sha256: string };
  yanked?: boolean | string;
}

async function files(url: string, project: string): Promise<PageFile[]> {
  const res = await fetch(`${url}/simple/${project}/`, { headers: { Accept: JSON_V1 } });
  if (res.status !== 200) return [];
  return ((await res.json()) as { files: PageFile[] }).files;
}

/** Milliseconds until check() holds (polling every 25 ms), or Infinity after timeoutMs. */
async function timeUntil(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await check()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 25));
  }
  return Infinity;
}

async function hashedCount(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^pypi_lite_files_hashed (\d+)/m.exec(text);
  if (!m) throw new Error(`no pypi_lite_files_hashed in /metrics:\n${text.slice(0, 500)}`);
  return Number(m[1]);
}

describe('two replicas on one S3 bucket (real pip and twine, Ceph RGW)', function () {
  this.timeout(240_000);
  let rgw: Rgw;
  let s3: S3Client;
  let work: string;
  let htpasswd: string;
  let env: Record<string, string>;
  let a: Spawned;
  let b: Spawned;
  const servers: Spawned[] = [];

  async function replica(name: string, extra: string[] = []): Promise<Spawned> {
    // The periodic full listing (the repair path) only every 10 s: what shows within 2 s came by the feed.
    const s = await spawnServer(['--disable-fallback', '--s3-path-style', '--s3-list-interval', '10', '-P', htpasswd, '--cache-dir', path.join(work, `cache-${name}`), ...extra, ROOT], { env });
    servers.push(s);
    await waitHealthy(s.url, { idle: true, timeoutMs: 60_000 });
    return s;
  }

  const upload = (url: string, filename: string, bytes: Buffer, name: string, version: string): Promise<Answer> =>
    post(`${url}/`, multipart(twineFields(name, version, filename, bytes), { filename, bytes }), basic('alice', PW));

  before(async function () {
    work = await tempDir('pypi-lite-s3-replicas-');
    rgw = await startRgwOrSkip(this);
    env = rgw.env;
    s3 = rgw.client();
    await rgw.createBucket('pkgs');
    // Put there by another tool (`aws s3 sync`): no replica has seen these bytes.
    for (const f of EXAMPLE_FILES) await s3.send(new PutObjectCommand({ Bucket: 'pkgs', Key: `pypi/${f.relPath}`, Body: await fsp.readFile(path.join(EXAMPLE, f.relPath)) }));
    htpasswd = path.join(work, 'htpasswd');
    expect((await passwd(htpasswd, 'alice', PW)).code).to.equal(0);
    a = await replica('a');
  });

  after(async () => {
    for (const s of servers) await s.stop();
    s3?.destroy();
    await rgw?.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('the first replica reads every object once; a second one starts from the listing and the bucket\'s index, reading none', async () => {
    expect(await hashedCount(a.url)).to.equal(EXAMPLE_FILES.length);
    // A shares what it computed through the feed (written within ~50 ms of each result).
    await new Promise((r) => setTimeout(r, 500));
    b = await replica('b');
    expect(await hashedCount(b.url), 'objects B read for digests').to.equal(0);
    for (const f of EXAMPLE_FILES) {
      const listed = (await files(b.url, f.project)).find((x) => x.filename === basename(f.relPath));
      expect(listed?.hashes.sha256, f.relPath).to.equal(sha256(await fsp.readFile(path.join(EXAMPLE, f.relPath))));
    }
  });

  it('a twine upload through A is installable with pip through B within 2 s', async () => {
    const dist = await buildProject('replica-demo', '1.0', { dir: path.join(work, 'dist-1') });
    const tw = await twine(['upload', '--disable-progress-bar', '--repository-url', `${a.url}/`, '-u', 'alice', '-p', PW, ...dist]);
    expect(tw.code, describeRun(tw)).to.equal(0);
    const wheel = path.basename(dist.find((f) => f.endsWith('.whl'))!);
    const ms = await timeUntil(async () => (await files(b.url, 'replica-demo')).some((f) => f.filename === wheel));
    expect(ms, 'time until the upload through A is on B\'s page').to.be.below(2000);
    const target = path.join(work, 'target-b');
    const r = await pip(['install', '--no-input', '--target', target, '--index-url', `${b.url}/simple/`, 'replica-demo==1.0']);
    expect(r.code, describeRun(r)).to.equal(0);
    expect(await fsp.readdir(target)).to.include('replica_demo-1.0.dist-info');
    // B knew the digests from A's upload: it read nothing.
    expect(await hashedCount(b.url)).to.equal(0);
  });

  it('a removal (remove_pkg) through A is gone from B\'s page within 2 s; a yank through A shows on B within 2 s', async () => {
    const bytes = await pyArchive(work, 'gone-1.0.tar.gz', { kind: 'sdist', name: 'gone', version: '1.0' });
    expect((await upload(a.url, 'gone-1.0.tar.gz', bytes, 'gone', '1.0')).status).to.equal(200);
    expect(await timeUntil(async () => (await files(b.url, 'gone')).length === 1)).to.be.below(2000);
    const removed = await post(`${a.url}/`, multipart([[':action', 'remove_pkg'], ['name', 'gone'], ['version', '1.0']], null), basic('alice', PW));
    expect(removed.status, removed.body).to.equal(200);
    expect(await timeUntil(async () => (await files(b.url, 'gone')).length === 0), 'time until the removal shows on B').to.be.below(2000);

    const yank = await fetch(`${a.url}/api/yank`, { method: 'POST', headers: { ...basic('alice', PW), 'Content-Type': 'application/json' }, body: JSON.stringify({ target: 'replica-demo==1.0', reason: 'broken' }) });
    expect(yank.status, await yank.text()).to.equal(200);
    const ms = await timeUntil(async () => (await files(b.url, 'replica-demo')).every((f) => f.yanked === 'broken'));
    expect(ms, 'time until the yank shows on B').to.be.below(2000);
  });

  it('of uploads racing through A and B, exactly one wins and the other is refused as on one box: one file name, two sdists of a release, two spellings of one file', async () => {
    const race = async (x: { filename: string; bytes: Buffer }, y: { filename: string; bytes: Buffer }, name: string, version: string) => {
      const [ra, rb] = await Promise.all([upload(a.url, x.filename, x.bytes, name, version), upload(b.url, y.filename, y.bytes, name, version)]);
      return [ra, rb];
    };
    const one = await pyArchive(work, 'race-1.0.tar.gz', { kind: 'sdist', name: 'race', version: '1.0', extra: 'one' });
    const two = await pyArchive(work, 'race-1.0.tar.gz', { kind: 'sdist', name: 'race', version: '1.0', extra: 'two' });
    const zip = await pyArchive(work, 'race-2.0.zip', { kind: 'sdist-zip', name: 'race', version: '2.0' });
    const tgz = await pyArchive(work, 'race-2.0.tar.gz', { kind: 'sdist', name: 'race', version: '2.0' });
    const lower = await pyArchive(work, 'race-3.0.tar.gz', { kind: 'sdist', name: 'race', version: '3.0', extra: 'lower' });
    const upper = await pyArchive(work, 'Race-3.0.tar.gz', { kind: 'sdist', name: 'race', version: '3.0', extra: 'upper' });
    const cases = [
      await race({ filename: 'race-1.0.tar.gz', bytes: one }, { filename: 'race-1.0.tar.gz', bytes: two }, 'race', '1.0'),
      await race({ filename: 'race-2.0.zip', bytes: zip }, { filename: 'race-2.0.tar.gz', bytes: tgz }, 'race', '2.0'),
      await race({ filename: 'race-3.0.tar.gz', bytes: lower }, { filename: 'Race-3.0.tar.gz', bytes: upper }, 'race', '3.0'),
    ];
    // As on one box: a second file of a name is 409 File already exists, a second sdist 400.
    const refusals = [409, 400, 409];
    for (const [i, answers] of cases.entries()) {
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses, `case ${i}: ${answers.map((r) => `${r.status} ${r.statusText}`).join(' / ')}`).to.deep.equal([200, refusals[i]].sort());
    }
    // Both replicas end up listing the winners only.
    const winners = (u: string) => files(u, 'race').then((fs) => fs.map((f) => f.filename).sort());
    expect(await timeUntil(async () => (await winners(b.url)).length === 3 && (await winners(a.url)).length === 3)).to.be.below(2000);
    expect(await winners(a.url)).to.deep.equal(await winners(b.url));
  });

  it('an object put by another S3 client appears on both replicas (the periodic listing)', async () => {
    const bytes = await pyArchive(work, 'outside-1.0.tar.gz', { kind: 'sdist', name: 'outside', version: '1.0' });
    await s3.send(new PutObjectCommand({ Bucket: 'pkgs', Key: 'pypi/outside/outside-1.0.tar.gz', Body: bytes }));
    const seen = async (u: string) => (await files(u, 'outside')).some((f) => f.hashes.sha256 === sha256(bytes));
    expect(await timeUntil(async () => (await seen(a.url)) && (await seen(b.url)), 30_000)).to.be.below(30_000);
  });

  it('a restarted replica (an empty cache directory) starts warm from the bucket: the same pages, no object read', async () => {
    await b.stop();
    const b2 = await replica('b2');
    expect(await hashedCount(b2.url)).to.equal(0);
    for (const p of ['replica-demo', 'race', 'outside', 'pypi-lite-demo']) {
      expect(await files(b2.url, p), p).to.deep.equal(await files(a.url, p));
    }
    b = b2;
  });

  it('the store stopped and started mid-run: both replicas keep serving pages, uploads answer 503, then they converge', async () => {
    const before = await files(b.url, 'replica-demo');
    await rgw.stopGateway();
    try {
      for (const u of [a.url, b.url]) expect(await files(u, 'replica-demo')).to.deep.equal(before);
      const bytes = await pyArchive(work, 'during-1.0.tar.gz', { kind: 'sdist', name: 'during', version: '1.0' });
      const refused = await upload(a.url, 'during-1.0.tar.gz', bytes, 'during', '1.0');
      expect(refused.status, refused.statusText).to.equal(503);
    } finally {
      await rgw.startGateway();
    }
    const bytes = await pyArchive(work, 'after-1.0.tar.gz', { kind: 'sdist', name: 'after', version: '1.0' });
    // The store's probe notices it is back within a few seconds.
    expect(await timeUntil(async () => (await upload(a.url, 'after-1.0.tar.gz', bytes, 'after', '1.0')).status === 200, 30_000)).to.be.below(30_000);
    expect(await timeUntil(async () => (await files(b.url, 'after')).length === 1), 'time until the upload after recovery shows on B').to.be.below(3000);
  });
});
