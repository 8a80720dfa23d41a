// The hashing workers in-process (HashPool): small files are hashed and parsed in batches, one
// synchronous step per file, bigger ones on the side (streamed above 16 MiB). What a batch
// must never do: lose or mix up the results of the other files when one of them is corrupt,
// missing or not a file; give a big file no metadata; or make urgent work wait for the batch.

import { expect } from 'chai';
import fc from 'fast-check';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from '../bench/zip.js';
import { sdist, wheel, wheelParts, type Dist } from '../bench/dists.js';
import { Worker } from 'node:worker_threads';
import { decodeResults, encodeResults, encodeTasks, STOP, WORKER_NICE, type ResultBatch } from '../lib/catalog/hash-messages.js';
import { HashPool, type HashResult } from '../lib/catalog/hash-pool.js';
import { parseMetadata, sdistMetadataIsStatic } from '../lib/metadata/parse.js';
import { summarizeMetadata } from '../lib/metadata/summary.js';
import type { ArchiveKind } from '../lib/metadata/types.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

type Ok = Extract<HashResult, { ok: true }>;
function ok(r: HashResult, what: string): Ok {
  if (!r.ok) expect.fail(`${what}: ${r.error}`);
  return r;
}

/** A wheel whose METADATA is deflated with a bad block type: only the streaming reader decides. */
function badDeflateWheel(name: string): Dist {
  const w = wheel(name, '1.0');
  const member = Buffer.from(`${name}-1.0.dist-info/METADATA`);
  const at = w.data.indexOf(member); // the local header's copy of the name comes first
  const data = Buffer.from(w.data);
  data[at + member.length] = 0xff; // BTYPE 11: "invalid block type"
  return { filename: w.filename, data };
}

describe('hash pool: batches of files (in-process)', function () {
  this.timeout(120_000);
  let dir: string;
  let pool: HashPool;

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-hashpool-'));
  });
  afterEach(async () => {
    await pool?.close();
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  async function put(d: Dist): Promise<string> {
    const p = path.join(dir, d.filename);
    await fsp.writeFile(p, d.data);
    return p;
  }

  it('a corrupt, missing or non-file entry in the middle of a batch leaves every other file its own digest and metadata', async () => {
    pool = new HashPool(1);
    const good: { path: string; dist: Dist; name: string; kind: ArchiveKind }[] = [];
    for (let i = 0; i < 150; i++) {
      const name = `batch-${i}`;
      const dist = i % 2 ? wheel(name, '1.0') : await sdist(name, '1.0');
      good.push({ path: await put(dist), dist, name, kind: i % 2 ? 'wheel' : 'tar.gz' });
    }
    const garbage = await put({ filename: 'garbage-1.0-py3-none-any.whl', data: randomBytes(3000) });
    const cut = wheel('cut', '1.0');
    const truncated = await put({ filename: cut.filename, data: cut.data.subarray(0, cut.data.length - 40) });
    const badGz = await put({ filename: 'badgz-1.0.tar.gz', data: Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), randomBytes(600)]) });
    const badDeflate = await put(badDeflateWheel('baddeflate'));
    const missing = path.join(dir, 'missing-1.0-py3-none-any.whl');
    const directory = path.join(dir, 'adir-1.0-py3-none-any.whl');
    await fsp.mkdir(directory);
    // The odd ones spread over the batch, all submitted at once.
    const odd = [garbage, truncated, badGz, badDeflate, missing, directory];
    const order: { path: string; kind: ArchiveKind }[] = good.map((g) => ({ path: g.path, kind: g.kind }));
    odd.forEach((p, i) => order.splice(10 + i * 25, 0, { path: p, kind: p.endsWith('.tar.gz') ? 'tar.gz' : 'wheel' }));
    const results = new Map<string, HashResult>();
    await Promise.all(order.map(async (t) => results.set(t.path, await pool.run({ path: t.path, archive: t.kind }))));

    for (const g of good) {
      const r = ok(results.get(g.path)!, g.dist.filename);
      expect(r.sha256, g.dist.filename).to.equal(sha256(g.dist.data));
      expect(r.size, g.dist.filename).to.equal(g.dist.data.length);
      expect(r.metadata?.name, g.dist.filename).to.equal(g.name);
      expect(r.metadataError, g.dist.filename).to.equal(undefined);
    }
    const corruptCode = (p: string): string | undefined => ok(results.get(p)!, path.basename(p)).metadataErrorCode;
    expect(corruptCode(garbage)).to.equal('TRUNCATED'); // no end-of-central-directory record
    expect(corruptCode(truncated)).to.equal('TRUNCATED');
    expect(corruptCode(badGz)).to.match(/^(CORRUPT_GZIP|TRUNCATED)$/);
    expect(corruptCode(badDeflate)).to.equal('CORRUPT_ZIP');
    for (const p of [garbage, truncated, badGz, badDeflate]) {
      const r = ok(results.get(p)!, path.basename(p));
      expect(r.sha256, path.basename(p)).to.equal(sha256(await fsp.readFile(p)));
      expect(r.metadata, path.basename(p)).to.equal(null);
    }
    const miss = results.get(missing)!;
    expect(miss.ok).to.equal(false);
    expect(!miss.ok && miss.error).to.match(/ENOENT/);
    const notFile = results.get(directory)!;
    expect(!notFile.ok && notFile.error).to.equal('not a regular file');
  });

  it('starts workers only for waiting work (none for nothing to hash), retires idle ones and starts them again on demand', async () => {
    pool = new HashPool(2, undefined, 200);
    expect(pool.running, 'before any work').to.equal(0);
    const one = wheel('lazy', '1.0');
    const p = await put(one);
    const first = ok(await pool.run({ path: p, archive: 'wheel' }), one.filename);
    expect(first.sha256).to.equal(sha256(one.data));
    expect(pool.running, 'one file: one worker').to.equal(1);
    const deadline = Date.now() + 10_000;
    while (pool.running > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(pool.running, 'after the idle time').to.equal(0);
    expect(pool.restarts, 'a retired worker is no death').to.equal(0);
    const again = ok(await pool.run({ path: p, archive: 'wheel' }), one.filename);
    expect(again.sha256).to.equal(sha256(one.data));
    expect(again.metadata?.name).to.equal('lazy');
  });

  it('hashing threads run at a lower priority than the main thread, which serves requests and applies results (Linux)', async function () {
    const niceOf = (tid: string): number | null => {
      try {
        // the fields after the command name: state is the 1st, nice the 17th
        return Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16]);
      } catch {
        return null; // a thread that just ended
      }
    };
    if (process.platform !== 'linux') this.skip();
    const tasks = (): Set<string> => new Set(readdirSync('/proc/self/task'));
    const before = tasks();
    pool = new HashPool(2);
    const one = wheel('nice', '1.0');
    const p = await put(one);
    await Promise.all([pool.run({ path: p, archive: 'wheel' }), pool.run({ path: p, archive: 'wheel' })]);
    expect(pool.running).to.equal(2);
    const mainNice = niceOf(String(process.pid));
    expect(mainNice).to.not.equal(null);
    const want = Math.min(19, Math.max(mainNice ?? 0, WORKER_NICE));
    // A worker lowers its priority as its script starts: both jobs may have been done by one
    // worker while the other was still loading, so wait (bounded) for the second.
    let started: number[] = [];
    for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 20))) {
      started = [...tasks()].filter((t) => !before.has(t)).map(niceOf).filter((n) => n !== null);
      if (started.filter((n) => n === want).length >= 2) break;
    }
    // each worker thread (and only they: a worker's own helper threads keep theirs) is niced
    expect(started.filter((n) => n === want), `nice values of the new threads: ${started.join(', ')}`).to.have.length(2);
    expect(WORKER_NICE).to.be.greaterThan(0);
  });

  it('files over the in-memory limit are streamed and still get their metadata, beside small ones', async () => {
    pool = new HashPool(1);
    const files: { path: string; bytes: Buffer; name: string }[] = [];
    // 2 MiB: read whole off the synchronous path; 20 MiB: streamed (hash and metadata).
    for (const [name, mb] of [['mid-size', 2], ['streamed', 20]] as const) {
      const payload = randomBytes(mb * 1024 * 1024);
      const { filename, parts } = wheelParts(name, '1.0', { payload: { data: payload, crc: crc32(payload), sha256: sha256(payload) } });
      const bytes = Buffer.concat(parts);
      files.push({ path: await put({ filename, data: bytes }), bytes, name });
      for (let i = 0; i < 40; i++) {
        const small = wheel(`${name}-small-${i}`, '1.0');
        files.push({ path: await put(small), bytes: small.data, name: `${name}-small-${i}` });
      }
    }
    const results = await Promise.all(files.map((f) => pool.run({ path: f.path, archive: 'wheel' })));
    results.forEach((r, i) => {
      const f = files[i];
      const got = ok(r, f.name);
      expect(got.sha256, f.name).to.equal(sha256(f.bytes));
      expect(got.size, f.name).to.equal(f.bytes.length);
      expect(got.metadata?.name, f.name).to.equal(f.name);
    });
  });

  it('extra digests (md5, blake2b-256) come with the sha256 of the same bytes', async () => {
    pool = new HashPool(1);
    const w = wheel('extra', '1.0');
    const p = await put(w);
    const r = ok(await pool.run({ path: p, extraDigests: true }), 'extra');
    expect(r.sha256).to.equal(sha256(w.data));
    expect(r.md5).to.equal(createHash('md5').update(w.data).digest('hex'));
    expect(r.blake2b256).to.match(/^[0-9a-f]{64}$/);
  });

  it('a queued file promoted by its task id is hashed before the files queued ahead of it', async () => {
    // One worker, 3,000 files queued: the last one's id (what submit returns and its result
    // carries) is promoted, as for a page that waits for it.
    pool = new HashPool(1);
    const queued = await put(wheel('queued', '1.0'));
    const last = await put(wheel('promoted', '1.0'));
    const n = 3000;
    const order: number[] = [];
    const all: Promise<void>[] = [];
    const ids: number[] = [];
    for (let i = 0; i <= n; i++) {
      all.push(
        new Promise<void>((resolve) => {
          const id = pool.submit({ path: i === n ? last : queued, archive: 'wheel' }, false, (r) => {
            expect(r.id, 'the result carries the id submit returned').to.equal(id);
            order.push(i);
            resolve();
          });
          ids.push(id);
        }),
      );
    }
    expect(new Set(ids).size, 'one id per task').to.equal(n + 1);
    expect(pool.promote(ids[n]), 'the last file is still queued').to.equal(true);
    expect(pool.promote(ids[n]), 'promoted once').to.equal(false);
    await Promise.all(all);
    // Without the promotion it would come last; with it, after the batch the worker holds.
    expect(order.indexOf(n)).to.be.below(n / 2);
  });

  it('a worker takes an urgent batch before the files it already holds', async () => {
    // The worker itself (the pool hands a worker at most a few hundred files at a time):
    // 5,000 queued files (one small wheel, many times), then, once it is busy, one urgent file.
    const queued = await put(wheel('queued', '1.0'));
    const urgentFile = await put(wheel('urgent', '1.0'));
    const worker = new Worker(new URL('../lib/catalog/hash-worker.js', import.meta.url), { workerData: { replacement: false } });
    try {
      const n = 5000;
      let done = 0;
      const urgentAfter = new Promise<number>((resolve, reject) => {
        let sentUrgent = false;
        worker.on('error', reject);
        worker.on('message', (batch: ResultBatch) => {
          for (const r of decodeResults(batch)) {
            if (r.id === 0) return resolve(done);
            ok(r, 'queued');
            done++;
          }
          if (!sentUrgent) {
            sentUrgent = true;
            worker.postMessage(encodeTasks([{ id: 0, path: urgentFile, archive: 'wheel', urgent: true }]));
          }
        });
      });
      worker.postMessage(encodeTasks(Array.from({ length: n }, (_, i) => ({ id: i + 1, path: queued, archive: 'wheel' as const }))));
      const doneBefore = await urgentAfter;
      // Without the priority it would come after all 5,000; with it, after the slice in hand.
      expect(doneBefore).to.be.below(n / 2);
      // Asked to stop while it still holds thousands of files, it exits by itself (code 0)
      // between two slices; terminate() would end it with code 1, possibly inside an inflate.
      const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
      worker.postMessage(STOP);
      expect(await exited, 'exit code').to.equal(0);
    } finally {
      await worker.terminate();
    }
  });
});

describe('hash worker messages', function () {
  it('carry every kind of result unchanged', function () {
    const base = { size: 1281, mtimeMs: 1764619200123.456, dev: 2049, ino: 2 ** 40 + 3, ctimeMs: 1764619200999.5 };
    const results: HashResult[] = [
      { id: 1, ok: true, ...base, sha256: 'a'.repeat(64), metadata: { sha256: 'b'.repeat(64), size: 377, name: 'Foo\0Bar ü', version: '1.0', requiresPython: null, servable: true } },
      { id: 2, ok: true, ...base, sha256: 'c'.repeat(64), metadata: { sha256: 'd'.repeat(64), size: 0, name: null, version: null, requiresPython: '>=3.8', servable: false } },
      { id: 3, ok: true, ...base, sha256: 'e'.repeat(64), metadata: null, metadataError: 'corrupt zip: bad', metadataErrorCode: 'CORRUPT_ZIP' },
      { id: 4, ok: true, ...base, sha256: 'f'.repeat(64), md5: '0'.repeat(32), blake2b256: '1'.repeat(64) },
      { id: 5, ok: false, error: 'ENOENT: no such file or directory' },
      { id: 6, ok: false, error: 'pool closed', transient: true },
      { id: 2 ** 52, ok: true, ...base, size: 0, sha256: '9'.repeat(64) },
    ];
    expect(decodeResults(encodeResults(results))).to.deep.equal(results);
    expect(decodeResults(encodeResults([]))).to.deep.equal([]);
  });
});

describe('metadata summary (what the workers keep of every file)', function () {
  // The workers parse only the fields kept (headers, no body): it must agree with the full
  // parser on whatever bytes an archive holds.
  const line = fc.oneof(
    fc.constantFrom('Metadata-Version: 2.2', 'Metadata-Version: 2.1', 'Name: foo', 'Name:', 'name:  Foo.Bar ', 'Version: 1.0', 'VERSION: 2',
      'Requires-Python: >=3.8', 'Dynamic: Requires-Dist, version', 'Dynamic:', 'dynamic: LICENSE', '  folded', '\tfolded more', '', 'From x', 'no colon here'),
    fc.string({ unit: 'binary-ascii', maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
  );
  const text = fc.tuple(fc.array(line, { maxLength: 14 }), fc.constantFrom('\n', '\r\n', '\r'), fc.boolean()).map(([ls, eol, bom]) => (bom ? '\ufeff' : '') + ls.join(eol));

  it('gives the same name, version, Requires-Python and servability as parseMetadata', function () {
    fc.assert(
      fc.property(text, fc.constantFrom<ArchiveKind>('wheel', 'tar.gz', 'zip', 'egg'), (t, kind) => {
        const bytes = Buffer.from(t);
        const full = parseMetadata(bytes);
        const s = summarizeMetadata(bytes, kind);
        expect(s.name).to.equal(full.name);
        expect(s.version).to.equal(full.version);
        expect(s.requiresPython).to.equal(full.requiresPython);
        expect(s.servable).to.equal(kind === 'wheel' || (kind !== 'egg' && sdistMetadataIsStatic(full)));
        expect(s.sha256).to.equal(sha256(bytes));
        expect(s.size).to.equal(bytes.length);
      }),
      { numRuns: 3000 },
    );
  });
});
