// Crash test: kill -9 the server while big uploads are in flight, restart it on the same root
// and cache, and check what a user would see: only complete files, every acknowledged upload
// listed with the right hash, no temp file left, interrupted uploads can simply be retried, and
// a file changed behind the server's back while it was down is re-hashed (stale cache entry).

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cacheFileFor, FileDigestCache } from '../lib/catalog/cache.js';
import { buildWheel, parseProjectPage, send, sha256, TEMP_PREFIX, upload, type HttpResult, type Wheel } from '../bench/soak.js';
import { spawnServer, waitHealthy, type Spawned } from './helpers/server.js';

const JSON_V1 = 'application/vnd.pypi.simple.v1+json';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function listing(url: string, project: string): Promise<Map<string, string>> {
  const r = await send(url, `/simple/${project}/`, { headers: { Accept: JSON_V1 } });
  if (!r || r.status === 404) return new Map();
  expect(r.status, `GET /simple/${project}/`).to.equal(200);
  return new Map(parseProjectPage(`${url}/simple/${project}/`, r).map((f) => [f.filename, f.sha256]));
}

async function temps(root: string): Promise<string[]> {
  return (await fsp.readdir(root)).filter((n) => n.startsWith(TEMP_PREFIX));
}

describe('crash test: kill -9 during uploads, then restart', function () {
  this.timeout(120_000);
  let work = '';
  const servers: Spawned[] = [];

  after(async () => {
    for (const s of servers) await s.stop('SIGKILL');
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('keeps only complete files, lists every acknowledged upload, sweeps temp files and re-hashes files changed while down', async () => {
    work = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-crash-'));
    const root = path.join(work, 'root');
    const cacheDir = path.join(work, 'cache');
    await fsp.mkdir(root);
    await fsp.mkdir(cacheDir);
    const args = [root, '-a', '.', '-P', '.', '--disable-fallback', '--cache-dir', cacheDir, '--log-level', 'warn'];
    const start = async () => {
      const s = await spawnServer(args);
      servers.push(s);
      await waitHealthy(s.url, { idle: true });
      return s;
    };

    // Seeds, among them the file that will be changed while the server is down.
    const victim = buildWheel('crash-victim', '1.0', randomBytes(64 * 1024));
    const victimPath = path.join(root, victim.filename);
    await fsp.writeFile(victimPath, Buffer.concat(victim.parts));
    const other = buildWheel('crash-victim', '0.9', randomBytes(4096));
    await fsp.writeFile(path.join(root, other.filename), Buffer.concat(other.parts));

    // 1. A first run hashes the seeds and writes the cache (a graceful stop flushes it).
    const first = await start();
    expect((await listing(first.url, 'crash-victim')).get(victim.filename)).to.equal(victim.sha256);
    expect(await first.stop('SIGTERM')).to.equal(0);
    const cache = new FileDigestCache(cacheFileFor(root, cacheDir), { scope: root });
    await cache.load();
    const victimStat = await fsp.stat(victimPath);
    const oldEntry = cache.lookup(victim.filename, { size: victimStat.size, mtimeMs: victimStat.mtimeMs, ino: victimStat.ino, ctimeMs: victimStat.ctimeMs });
    expect(oldEntry?.sha256, 'the cache holds the victim before the crash').to.equal(victim.sha256);

    // 2. Concurrent big uploads; kill -9 while some are acknowledged and others still in flight.
    const server = await start();
    const fast: Wheel[] = [];
    const slow: Wheel[] = [];
    for (let i = 0; i < 3; i++) fast.push(buildWheel('crash-big', `1.${i}`, randomBytes((5 + i * 2) * 1024 * 1024)));
    for (let i = 0; i < 5; i++) slow.push(buildWheel('crash-big', `2.${i}`, randomBytes((5 + i * 3) * 1024 * 1024)));
    const all = [...fast, ...slow];
    const outcome = new Map<string, HttpResult | Error | null>();
    const sent = new Map<string, number>();
    let killed = false;
    const track = (w: Wheel, p: Promise<HttpResult | null>) =>
      p.then(
        (r) => outcome.set(w.filename, r),
        (err: Error) => outcome.set(w.filename, err),
      );
    const inflight = [
      ...fast.map((w) => track(w, upload(server.url, w, { timeoutMs: 60_000 }))),
      ...slow.map((w) =>
        track(
          w,
          upload(server.url, w, {
            timeoutMs: 60_000,
            // ~2.5 MB/s: these are still being sent when the server dies.
            throttle: { chunk: 128 * 1024, delayMs: 50, onProgress: (n) => sent.set(w.filename, n), stop: () => killed },
          }),
        ),
      ),
    ];
    const acked = () => fast.filter((w) => (outcome.get(w.filename) as HttpResult | undefined)?.status === 200).length;
    const deadline = Date.now() + 30_000;
    while (!(acked() >= 2 && slow.every((w) => (sent.get(w.filename) ?? 0) > 1024 * 1024))) {
      if (Date.now() > deadline) expect.fail(`setup: uploads did not progress (${JSON.stringify([...outcome].map(([k, v]) => [k, v instanceof Error ? v.message : v?.status]))})`);
      await sleep(20);
    }
    const inFlightTemps = await temps(root);
    expect(inFlightTemps.length, 'uploads in flight have temp files').to.be.greaterThan(0);
    expect(await server.stop('SIGKILL')).to.equal(null);
    killed = true;
    // Whatever had no answer before the kill gets none now.
    await Promise.race([Promise.all(inflight), sleep(10_000)]);

    const ok = all.filter((w) => (outcome.get(w.filename) as HttpResult | undefined)?.status === 200);
    const notOk = all.filter((w) => !ok.includes(w));
    for (const w of all) {
      const r = outcome.get(w.filename);
      if (r && !(r instanceof Error)) expect(r.status, `${w.filename}: ${r.reason}`).to.equal(200); // never a refusal
    }
    expect(ok.length, 'some uploads were acknowledged before the kill').to.be.greaterThan(1);
    expect(notOk.length, 'some uploads were interrupted by the kill').to.be.greaterThan(1);
    expect((await temps(root)).length, 'the kill left temp files behind').to.be.greaterThan(0);

    // 3. While the server is down, the victim changes: same name and size, new bytes and mtime.
    const changed = Buffer.concat(buildWheel('crash-victim', '1.0', randomBytes(64 * 1024)).parts);
    expect(changed.length).to.equal(victim.size);
    await fsp.writeFile(victimPath, changed);
    const later = new Date(victimStat.mtimeMs + 5_000);
    await fsp.utimes(victimPath, later, later);
    const st = await fsp.stat(victimPath);
    expect(st.size).to.equal(oldEntry!.size);
    expect(st.mtimeMs).not.to.equal(victimStat.mtimeMs);

    // 4. Restart on the same root and cache.
    const again = await start();
    let left = await temps(root);
    for (let i = 0; left.length && i < 50; i++) {
      await sleep(100);
      left = await temps(root);
    }
    expect(left, 'temp files of the killed server are removed at restart').to.deep.equal([]);

    // Only complete files: every distribution on disk is byte-identical to what was sent.
    const bySha = new Map(all.map((w) => [w.filename, w.sha256]));
    const onDisk = (await fsp.readdir(root)).filter((n) => !n.startsWith('.'));
    for (const name of onDisk) {
      if (name === victim.filename || name === other.filename) continue;
      expect(bySha.has(name), `unexpected file ${name}`).to.equal(true);
      expect(sha256(await fsp.readFile(path.join(root, name))), `${name} on disk is incomplete or corrupt`).to.equal(bySha.get(name));
    }
    for (const w of ok) expect(onDisk, `acknowledged ${w.filename} is on disk`).to.include(w.filename);

    // Every acknowledged upload is listed with its hash; nothing listed that is not on disk.
    const big = await listing(again.url, 'crash-big');
    for (const w of ok) expect(big.get(w.filename), `acknowledged ${w.filename} on /simple/crash-big/`).to.equal(w.sha256);
    for (const [name, hash] of big) {
      expect(onDisk, `${name} is listed but not on disk`).to.include(name);
      expect(hash).to.equal(bySha.get(name));
    }
    const index = await send(again.url, '/simple/', { headers: { Accept: JSON_V1 } });
    expect(index!.body.toString()).not.to.include(TEMP_PREFIX);

    // The stale cache entry was detected (same size, other mtime) and the file re-hashed.
    const vic = await listing(again.url, 'crash-victim');
    expect(vic.get(victim.filename), 'the victim is listed with the hash of its new bytes').to.equal(sha256(changed));
    const dl = await send(again.url, `/packages/${victim.filename}`);
    expect(dl!.status).to.equal(200);
    expect(sha256(dl!.body)).to.equal(vic.get(victim.filename));
    expect(vic.get(other.filename)).to.equal(other.sha256);

    // The interrupted uploads can simply be retried: each one is accepted (created or identical).
    for (const w of notOk) {
      const r = await upload(again.url, w);
      expect(r?.status, `retry of ${w.filename}: ${r?.reason}`).to.equal(200);
    }
    const final = await listing(again.url, 'crash-big');
    for (const w of all) expect(final.get(w.filename), `${w.filename} after the retries`).to.equal(w.sha256);
    expect(await temps(root)).to.deep.equal([]);
    expect(await again.stop('SIGTERM')).to.equal(0);
  });
});
