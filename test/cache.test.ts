// The digest cache: a binary snapshot + append-only tail of CRC-checked records, keyed by path
// and a stamp (size, mtime, inode, ctime; or size and ETag for an object), written for one root.
// Whatever is damaged, truncated, of another format or of another root is dropped, never trusted.

import { pino } from 'pino';
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CACHE_MAGIC, FileDigestCache, parseCache, type CacheEntry, type FsStamp } from '../lib/catalog/cache.js';

const SHA = 'a'.repeat(64);
const MD_SHA = 'b'.repeat(64);
const ROOT = '/srv/packages';

function entry(size: number, extra: Partial<CacheEntry> = {}): CacheEntry {
  return { size, mtimeMs: 1700000000123.456, ino: 4242, ctimeMs: 1700000000456.789, sha256: SHA, ...extra };
}

/** The stamp of entry(size) (what the file on disk would show if unchanged). */
const stamp = (size: number): FsStamp => ({ size, mtimeMs: 1700000000123.456, ino: 4242, ctimeMs: 1700000000456.789 });

function collect(): { log: pino.Logger; warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, log: pino({}, { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) }) };
}

/** Three entries of every shape: the first in the snapshot, the others appended to the tail. */
const SAMPLE: [string, CacheEntry][] = [
  ['a/alpha-1.0-py3-none-any.whl', entry(1, { metadata: { sha256: MD_SHA, size: 99, name: 'Alpha', version: '1.0', requiresPython: '>=3.8', servable: true } })],
  ['beta-2.0.tar.gz', entry(2, { metadata: null, metadataError: 'no PKG-INFO', md5: 'c'.repeat(32), blake2b256: 'd'.repeat(64) })],
  ['gamma-3.0.tar.gz', { size: 3, etag: '"0123abcd"', sha256: 'e'.repeat(64) }],
];

async function writeSample(file: string): Promise<Buffer> {
  const c = new FileDigestCache(file, { scope: ROOT });
  await c.load();
  c.set(...SAMPLE[0]);
  await c.flush();
  c.set(...SAMPLE[1]);
  c.set(...SAMPLE[2]);
  await c.flush();
  const bytes = await fsp.readFile(file);
  expect(parseCache(bytes, ROOT)).to.include({ records: 3, problem: null });
  return bytes;
}

function stampOf(e: CacheEntry) {
  return e.etag !== undefined ? { size: e.size, etag: e.etag } : { size: e.size, mtimeMs: e.mtimeMs, ino: e.ino, ctimeMs: e.ctimeMs };
}

/** What a cache loaded from these bytes would answer for the sample's files. */
async function answers(dir: string, bytes: Buffer, scope = ROOT): Promise<(CacheEntry | undefined)[]> {
  const file = path.join(dir, 'probe');
  await fsp.writeFile(file, bytes);
  const c = new FileDigestCache(file, { scope });
  await c.load();
  return SAMPLE.map(([rel, e]) => c.lookup(rel, stampOf(e)));
}

describe('digest cache', function () {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-cache-test-'));
  });
  afterEach(async () => fsp.rm(dir, { recursive: true, force: true }));

  it('round-trips every field through the file, including odd names and ETag stamps', async function () {
    const file = path.join(dir, 'c');
    const odd: CacheEntry = entry(42, {
      md5: 'c'.repeat(32),
      blake2b256: 'd'.repeat(64),
      metadata: { sha256: MD_SHA, size: 999, name: 'we\tird\nname\\x ünï', version: '1.0', requiresPython: null, servable: false },
      metadataError: 'none\there',
    });
    const rel = 'sub dir/we\tird\\name-1.0.tar.gz';
    const a = new FileDigestCache(file, { scope: ROOT });
    await a.load();
    a.set(rel, odd);
    for (const [r, e] of SAMPLE) a.set(r, e);
    await a.flush();
    const b = new FileDigestCache(file, { scope: ROOT });
    await b.load();
    expect(b.size).to.equal(4);
    expect(b.lookup(rel, stamp(42))).to.deep.equal(odd);
    for (const [r, e] of SAMPLE) expect(b.lookup(r, stampOf(e)), r).to.deep.equal(e);
  });

  it('persists by appending, survives a torn last record, and honours deletes', async function () {
    const file = path.join(dir, 'c');
    const a = new FileDigestCache(file, { scope: ROOT });
    await a.load();
    a.set('a.whl', entry(1));
    a.set('b.whl', entry(2));
    await a.flush();
    const before = await fsp.readFile(file);
    const first = before.length;
    a.delete('a.whl');
    a.update('b.whl', { md5: 'e'.repeat(32) });
    await a.flush();
    const full = await fsp.readFile(file);
    expect(full.length).to.be.greaterThan(first);
    expect(full.subarray(0, first).equals(before), 'appended, not rewritten').to.equal(true);
    await fsp.appendFile(file, full.subarray(first, first + 7)); // a crash in the middle of an append
    const { log, warnings } = collect();
    const b = new FileDigestCache(file, { scope: ROOT, log });
    await b.load();
    expect(b.lookup('a.whl', stamp(1))).to.equal(undefined);
    expect(b.lookup('b.whl', stamp(2))?.md5).to.equal('e'.repeat(32));
    expect(b.size).to.equal(1);
    expect(warnings.join()).to.match(/torn last record/);
    // The torn tail is not appended to: the next write rewrites the file, which then loads clean.
    b.set('c.whl', entry(3));
    await b.flush();
    const c = new FileDigestCache(file, { scope: ROOT });
    await c.load();
    expect(parseCache(await fsp.readFile(file), ROOT).problem).to.equal(null);
    expect(c.size).to.equal(2);
    expect(c.lookup('c.whl', stamp(3))?.sha256).to.equal(SHA);
  });

  it('treats an entry whose size, mtime, inode, ctime or ETag changed as stale', function () {
    const c = new FileDigestCache(path.join(dir, 'c'));
    c.set('a.whl', entry(10));
    c.set('o.whl', { size: 10, etag: '"v1"', sha256: SHA });
    expect(c.lookup('a.whl', stamp(10))).to.not.equal(undefined);
    expect(c.lookup('a.whl', { ...stamp(10), size: 11 })).to.equal(undefined);
    expect(c.lookup('a.whl', { ...stamp(10), mtimeMs: stamp(10).mtimeMs + 1 })).to.equal(undefined);
    // Same size and mtime, other bytes: rewritten in place (new ctime) or renamed over (new inode).
    expect(c.lookup('a.whl', { ...stamp(10), ctimeMs: stamp(10).ctimeMs + 1 }), 'ctime').to.equal(undefined);
    expect(c.lookup('a.whl', { ...stamp(10), ino: 4243 }), 'inode').to.equal(undefined);
    expect(c.lookup('a.whl', { size: 10, etag: '"v1"' }), 'a file entry is not an object entry').to.equal(undefined);
    expect(c.lookup('o.whl', { size: 10, etag: '"v1"' })?.sha256).to.equal(SHA);
    expect(c.lookup('o.whl', { size: 10, etag: '"v2"' }), 'other ETag').to.equal(undefined);
    expect(c.lookup('o.whl', { size: 11, etag: '"v1"' }), 'other size').to.equal(undefined);
    expect(c.lookup('o.whl', stamp(10)), 'an object entry is not a file entry').to.equal(undefined);
  });

  it('ignores a journal of format 3 (even one whose stamps match) and rewrites the file', async function () {
    const file = path.join(dir, 'c');
    const s = stamp(10);
    await fsp.writeFile(file, `pypi-lite-cache 3\nS\ta.whl\t10\t${s.mtimeMs}\t${s.ino}\t${s.ctimeMs}\t${SHA}\t\t\tu\t\t\t\t\t\t\t\n`);
    const { log, warnings } = collect();
    const c = new FileDigestCache(file, { scope: ROOT, log });
    await c.load();
    expect(c.size).to.equal(0);
    expect(c.lookup('a.whl', s)).to.equal(undefined);
    expect(warnings.join()).to.match(/older format/);
    c.set('b.whl', entry(1));
    await c.flush();
    const bytes = await fsp.readFile(file);
    expect(bytes.subarray(0, CACHE_MAGIC.length).toString('latin1')).to.equal(CACHE_MAGIC);
    expect(bytes.includes('a.whl')).to.equal(false);
  });

  it('ignores a cache file of another format, and rewrites it', async function () {
    const file = path.join(dir, 'c');
    await fsp.writeFile(file, '{"format":"pypi-lite-cache","version":1,"entries":{}}');
    const { log, warnings } = collect();
    const c = new FileDigestCache(file, { scope: ROOT, log });
    await c.load();
    expect(c.size).to.equal(0);
    expect(warnings.join()).to.match(/unknown format/);
    c.set('a.whl', entry(1));
    await c.flush();
    expect((await fsp.readFile(file)).subarray(0, CACHE_MAGIC.length).toString('latin1')).to.equal(CACHE_MAGIC);
  });

  it('ignores a cache written for another root (a copied cache dir, a moved root)', async function () {
    const file = path.join(dir, 'c');
    const bytes = await writeSample(file);
    expect(await answers(dir, bytes, ROOT)).to.deep.equal(SAMPLE.map(([, e]) => e));
    expect(await answers(dir, bytes, '/srv/other')).to.deep.equal([undefined, undefined, undefined]);
    const { log, warnings } = collect();
    const c = new FileDigestCache(file, { scope: `${ROOT}-moved`, log });
    await c.load();
    expect(c.size).to.equal(0);
    expect(warnings.join()).to.match(/another root/);
  });

  it('truncated at every length: keeps only a whole snapshot and whole records, never a wrong entry', async function () {
    const bytes = await writeSample(path.join(dir, 'c'));
    const whole = SAMPLE.map(([, e]) => e);
    let partial = 0;
    for (let n = 0; n < bytes.length; n++) {
      const got = await answers(dir, bytes.subarray(0, n));
      got.forEach((e, i) => {
        if (e !== undefined) expect(e, `prefix ${n}, ${SAMPLE[i][0]}`).to.deep.equal(whole[i]);
      });
      expect(got[2], `prefix ${n}: the last record is cut`).to.equal(undefined);
      if (got[0] !== undefined) partial++;
    }
    expect(partial, 'prefixes with the first record whole keep it').to.be.greaterThan(0);
    expect(await answers(dir, bytes)).to.deep.equal(whole);
  });

  it('corrupt at any byte: drops what it cannot trust, never a wrong entry', async function () {
    const bytes = await writeSample(path.join(dir, 'c'));
    const whole = SAMPLE.map(([, e]) => e);
    for (let i = 0; i < bytes.length; i++) {
      for (const flip of [0x01, 0x80]) {
        const bad = Buffer.from(bytes);
        bad[i] ^= flip;
        const r = parseCache(bad, ROOT);
        expect(r.problem, `byte ${i} ^ ${flip} is noticed`).to.not.equal(null);
        const got = await answers(dir, bad);
        got.forEach((e, k) => {
          if (e !== undefined) expect(e, `byte ${i} ^ ${flip}, ${SAMPLE[k][0]}`).to.deep.equal(whole[k]);
        });
      }
    }
  });

  /** A cache file of one snapshot record and a tail of 1,500 appended ones; the cache that wrote it. */
  async function withLongTail(file: string, delayMs?: number): Promise<FileDigestCache> {
    const a = new FileDigestCache(file, { scope: ROOT, ...(delayMs === undefined ? {} : { delayMs }) });
    await a.load();
    a.set('first.whl', entry(1));
    await a.flush();
    for (let i = 0; i < 1500; i++) a.set(`f${i}.whl`, entry(i + 10));
    await a.flush();
    expect(parseCache(await fsp.readFile(file), ROOT)).to.include({ records: 1501, tail: 1500, problem: null });
    return a;
  }

  it('folds a long tail (e.g. after a cold start) into the snapshot after a load', async function () {
    const file = path.join(dir, 'c');
    await withLongTail(file);
    const b = new FileDigestCache(file, { scope: ROOT, delayMs: 10 });
    await b.load();
    await new Promise((r) => setTimeout(r, 50));
    await b.flush();
    expect(parseCache(await fsp.readFile(file), ROOT)).to.include({ records: 1501, tail: 0, problem: null });
    const c = new FileDigestCache(file, { scope: ROOT });
    await c.load();
    expect(c.size).to.equal(1501);
    expect(c.lookup('f1499.whl', stamp(1509))?.sha256).to.equal(SHA);
  });

  it('settle() folds the tail a burst of changes appended (a cold start) into the snapshot, so the next start reads one snapshot', async function () {
    const file = path.join(dir, 'c');
    const a = await withLongTail(file, 10);
    a.settle();
    await new Promise((r) => setTimeout(r, 50));
    await a.flush();
    expect(parseCache(await fsp.readFile(file), ROOT)).to.include({ records: 1501, tail: 0, problem: null });
    // A short tail is left alone (appending is cheaper than a rewrite).
    a.set('late.whl', entry(2));
    await a.flush();
    a.settle();
    await a.flush();
    expect(parseCache(await fsp.readFile(file), ROOT)).to.include({ records: 1502, tail: 1, problem: null });
    const b = new FileDigestCache(file, { scope: ROOT });
    await b.load();
    expect(b.size).to.equal(1502);
    expect(b.lookup('f1499.whl', stamp(1509))?.sha256).to.equal(SHA);
  });

  it('appends a record per change and compacts a file that is mostly superseded records', async function () {
    const file = path.join(dir, 'c');
    const c = new FileDigestCache(file, { scope: ROOT });
    await c.load();
    c.set('keep.whl', entry(1));
    await c.flush();
    const oneRecord = (await fsp.stat(file)).size;
    for (let i = 0; i < 1500; i++) c.update('keep.whl', { md5: i.toString(16).padStart(32, '0') });
    await c.flush();
    const r = parseCache(await fsp.readFile(file), ROOT);
    expect(r.problem).to.equal(null);
    expect(r.records, 'compacted to one record').to.equal(1);
    expect((await fsp.stat(file)).size).to.be.below(oneRecord + 100);
    const again = new FileDigestCache(file, { scope: ROOT });
    await again.load();
    expect(again.lookup('keep.whl', stamp(1))?.md5).to.equal((1499).toString(16).padStart(32, '0'));
  });
});
