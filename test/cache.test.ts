// The digest cache: a binary snapshot + append-only tail of CRC-checked records, keyed by path
// and a stamp (size, mtime, inode, ctime; or size and ETag for an object), written for one root.
// Whatever is damaged, truncated, of another format or of another root is dropped, never trusted.

import { pino } from 'pino';
import { expect } from 'chai';
import fs, { promises as fsp } from 'node:fs';
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
  const got = SAMPLE.map(([rel, e]) => c.lookup(rel, stampOf(e)));
  await c.close();
  return got;
}

describe('digest cache', function () {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-cache-test-'));
  });
  afterEach(async () => fsp.rm(dir, { recursive: true, force: true }));

  it('keeps no state between records: one that cannot be encoded, or a very large one, changes nothing in the next', async function () {
    // Records are encoded in one shared writer and copied out.
    const file = path.join(dir, 'c');
    const c = new FileDigestCache(file, { scope: ROOT });
    await c.load();
    const tooLong = entry(7, { metadata: { sha256: MD_SHA, size: 1, name: 'n'.repeat(70_000), version: '1', requiresPython: null, servable: true } });
    const large = entry(8, { metadataError: 'e'.repeat(3_000), metadata: { sha256: MD_SHA, size: 1, name: 'm'.repeat(60_000), version: '1', requiresPython: null, servable: true } });
    c.set('bad-1.0.tar.gz', tooLong);
    c.set('large-1.0.tar.gz', large);
    for (const [rel, e] of SAMPLE) c.set(rel, e);
    c.set('bad-2.0.tar.gz', tooLong);
    await c.close();
    const bytes = await fsp.readFile(file);
    expect(parseCache(bytes, ROOT)).to.include({ problem: null });
    expect(await answers(dir, bytes)).to.deep.equal(SAMPLE.map(([, e]) => e));
    const again = new FileDigestCache(file, { scope: ROOT });
    await again.load();
    expect(again.lookup('bad-1.0.tar.gz', stampOf(tooLong)), 'not cached: its name cannot be encoded').to.equal(undefined);
    expect(again.lookup('large-1.0.tar.gz', stampOf(large))).to.deep.equal(large);
    await again.close();
  });

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

  it('fills a file\'s metadata strings from records that share them, byte for byte', async function () {
    // fill() copies a record into a file with its short strings shared (interned): same-length
    // names, non-ASCII ones, long ones and missing ones must all come back as they were written.
    const file = path.join(dir, 'c');
    const names = ['a1', 'b1', '1a', 'Ünï.cöde', 'ÜnÏ.cöde', 'x'.repeat(100), 'x'.repeat(99) + 'y', ...Array.from({ length: 700 }, (_, i) => `Proj.${i}`)];
    const entries: [string, CacheEntry][] = Array.from({ length: 3000 }, (_, i) => [
      `f${i}-1.0.tar.gz`,
      entry(i + 1, { metadata: { sha256: MD_SHA, size: i, name: names[(i * 7) % names.length], version: `1.${i % 13}`, requiresPython: i % 3 ? `>=3.${i % 5}` : null, servable: i % 2 === 0 } }),
    ]);
    const a = new FileDigestCache(file, { scope: ROOT });
    await a.load();
    for (const [r, e] of entries) a.set(r, e);
    await a.close();
    const b = new FileDigestCache(file, { scope: ROOT });
    await b.load();
    for (let pass = 0; pass < 2; pass++) {
      for (const [r, e] of entries) {
        let got: [string | null, string | null, string | null, boolean] | null = null;
        const target = {
          metadata: undefined as unknown,
          setSha256Bytes: () => {},
          setMetadataBytes: (_b: Buffer, _at: number, _size: number, name: string | null, version: string | null, rp: string | null, servable: boolean) => {
            got = [name, version, rp, servable];
          },
        };
        expect(b.fill(r, stampOf(e), target as unknown as Parameters<FileDigestCache['fill']>[2], { decode: (buf, start, end) => buf.toString('utf8', start, end) }), r).to.equal(true);
        const md = e.metadata!;
        expect(got, r).to.deep.equal([md.name, md.version, md.requiresPython, md.servable]);
      }
    }
    await b.close();
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

  describe('once the first scan is done (records read from the file, not kept in memory)', function () {
    /** The keys of a cache file's live records, in the order of the file. */
    function keysInFileOrder(bytes: Buffer): string[] {
      const { index, problem } = parseCache(bytes, ROOT);
      expect(problem).to.equal(null);
      return [...index.sortedOffsets()].map((off) => index.keyAt(off) ?? '?');
    }

    /** Flip a byte inside the record of `rel` in the file, in place (the same inode). */
    async function damageInPlace(file: string, rel: string): Promise<void> {
      const bytes = await fsp.readFile(file);
      const at = bytes.lastIndexOf(Buffer.from(rel));
      expect(at).to.be.greaterThan(0);
      const fh = await fsp.open(file, 'r+');
      await fh.write(Buffer.from([bytes[at + rel.length + 3] ^ 0xff]), 0, 1, at + rel.length + 3);
      await fh.close();
    }

    /** Make fs.write call `hook` first (the nth call); an error it returns fails that write. */
    function patchWrite(hook: (n: number) => Error | null): () => void {
      const orig = fs.write;
      let n = 0;
      const patched = function (this: unknown, ...args: unknown[]): void {
        const err = hook(++n);
        const cb = args[args.length - 1];
        if (err && typeof cb === 'function') process.nextTick(() => void Reflect.apply(cb, undefined, [err]));
        else Reflect.apply(orig, this, args);
      };
      Object.defineProperty(fs, 'write', { value: patched, writable: true, configurable: true });
      return () => Object.defineProperty(fs, 'write', { value: orig, writable: true, configurable: true });
    }

    /** A cache file of `n` entries (a snapshot), and a cache loaded from it. */
    async function loaded(file: string, n: number): Promise<FileDigestCache> {
      const a = new FileDigestCache(file, { scope: ROOT });
      await a.load();
      for (let i = 0; i < n; i++) a.set(`pkg-${i}/demo_${i}-1.0-py3-none-any.whl`, entry(i + 1, { md5: 'c'.repeat(32) }));
      await a.close();
      const b = new FileDigestCache(file, { scope: ROOT });
      await b.load();
      return b;
    }
    const rel = (i: number) => `pkg-${i}/demo_${i}-1.0-py3-none-any.whl`;

    it('finds the same records after the scan (retain) as before, read from the file and checked again', async function () {
      const file = path.join(dir, 'c');
      const c = await loaded(file, 500);
      const before = Array.from({ length: 500 }, (_, i) => c.lookup(rel(i), stamp(i + 1)));
      expect(before.every((e) => e?.md5 === 'c'.repeat(32))).to.equal(true);
      c.retain(() => true);
      expect(Array.from({ length: 500 }, (_, i) => c.lookup(rel(i), stamp(i + 1)))).to.deep.equal(before);
      expect(c.lookup(rel(500), stamp(501))).to.equal(undefined);
      // The record now comes from the file: bytes changed there are a miss, never a wrong entry.
      await damageInPlace(file, rel(7));
      expect(c.lookup(rel(7), stamp(8))).to.equal(undefined);
      expect(c.lookup(rel(8), stamp(9))).to.deep.equal(before[8]);
      await c.close();
    });

    it('finds a record appended after the scan by its offset in the file; deletes after the scan hold', async function () {
      const file = path.join(dir, 'c');
      const c = await loaded(file, 50);
      c.retain((r) => r !== rel(3));
      c.set('new-1.0.tar.gz', entry(77, { metadata: null }));
      c.delete(rel(4));
      c.update(rel(5), { md5: 'e'.repeat(32) });
      expect(c.lookup('new-1.0.tar.gz', stamp(77))?.metadata).to.equal(null);
      const size = (await fsp.stat(file)).size;
      await c.flush();
      expect((await fsp.stat(file)).size, 'appended').to.be.greaterThan(size);
      expect(c.size).to.equal(49);
      expect(c.lookup(rel(3), stamp(4)), 'gone at the scan').to.equal(undefined);
      expect(c.lookup(rel(4), stamp(5)), 'deleted').to.equal(undefined);
      expect(c.lookup(rel(5), stamp(6))?.md5).to.equal('e'.repeat(32));
      expect(c.lookup('new-1.0.tar.gz', stamp(77))?.sha256).to.equal(SHA);
      await c.close();
      const d = new FileDigestCache(file, { scope: ROOT });
      await d.load();
      d.retain(() => true);
      expect(d.size).to.equal(49);
      expect(d.lookup(rel(3), stamp(4))).to.equal(undefined);
      expect(d.lookup(rel(4), stamp(5))).to.equal(undefined);
      expect(d.lookup(rel(5), stamp(6))?.md5).to.equal('e'.repeat(32));
      expect(d.lookup('new-1.0.tar.gz', stamp(77))?.metadata).to.equal(null);
      // The appended record is read from the file (not kept): a damaged copy there is a miss.
      await damageInPlace(file, 'new-1.0.tar.gz');
      expect(d.lookup(rel(6), stamp(7))?.sha256).to.equal(SHA);
      expect(d.lookup('new-1.0.tar.gz', stamp(77))).to.equal(undefined);
      await d.close();
    });

    it('compacts into a snapshot of exactly the live entries, in the order of the file, and reads from the new file', async function () {
      const file = path.join(dir, 'c');
      const c = await loaded(file, 1200);
      c.retain(() => true);
      for (let i = 0; i < 1200; i += 3) c.delete(rel(i));
      c.update(rel(1), { md5: 'e'.repeat(32) });
      for (let i = 0; i < 3008; i++) c.update(rel(2), { md5: (i % 16).toString(16).repeat(32) });
      await c.flush();
      const bytes = await fsp.readFile(file);
      expect(parseCache(bytes, ROOT)).to.include({ tail: 0, records: 800, problem: null });
      const live = Array.from({ length: 1200 }, (_, i) => i).filter((i) => i % 3 !== 0 && i !== 1 && i !== 2);
      expect(keysInFileOrder(bytes)).to.deep.equal([...live.map(rel), rel(1), rel(2)]);
      expect(c.lookup(rel(2), stamp(3))?.md5).to.equal('f'.repeat(32));
      expect(c.lookup(rel(1), stamp(2))?.md5).to.equal('e'.repeat(32));
      expect(c.lookup(rel(4), stamp(5))?.md5).to.equal('c'.repeat(32));
      expect(c.lookup(rel(3), stamp(4))).to.equal(undefined);
      await damageInPlace(file, rel(4));
      expect(c.lookup(rel(5), stamp(6))?.sha256).to.equal(SHA);
      expect(c.lookup(rel(4), stamp(5)), 'read from the new file').to.equal(undefined);
      await c.close();
    });

    it('a write failing mid-compaction leaves the old file as it was and every entry answered; the next flush rewrites it', async function () {
      const file = path.join(dir, 'c');
      const c = await loaded(file, 16000);
      c.retain(() => true);
      const before = await fsp.readFile(file);
      for (let i = 0; i < 16000; i += 4) c.delete(rel(i));
      for (let i = 0; i < 30000; i++) c.update(rel(1), { md5: (i % 16).toString(16).repeat(32) });
      const restore = patchWrite((n) => (n === 2 ? Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }) : null));
      try {
        await c.flush();
      } finally {
        restore();
      }
      expect((await fsp.readFile(file)).equals(before), 'the old file is untouched').to.equal(true);
      expect((await fsp.readdir(dir)).sort(), 'no temp file left').to.deep.equal(['c']);
      expect(c.size).to.equal(12000);
      expect(c.lookup(rel(1), stamp(2))?.md5).to.equal('f'.repeat(32));
      expect(c.lookup(rel(3), stamp(4))?.sha256).to.equal(SHA);
      expect(c.lookup(rel(4), stamp(5))).to.equal(undefined);
      await c.flush();
      const after = await fsp.readFile(file);
      expect(parseCache(after, ROOT)).to.include({ records: 12000, tail: 0, problem: null });
      expect(after.length, 'written in more than one chunk').to.be.greaterThan(1 << 20);
      await c.close();
      const d = new FileDigestCache(file, { scope: ROOT });
      await d.load();
      expect(d.size).to.equal(12000);
      expect(d.lookup(rel(1), stamp(2))?.md5).to.equal('f'.repeat(32));
      expect(d.lookup(rel(15999), stamp(16000))?.sha256).to.equal(SHA);
      expect(d.lookup(rel(4), stamp(5))).to.equal(undefined);
      await d.close();
    });

    it('changes made while a compaction is being written are not lost to it', async function () {
      const file = path.join(dir, 'c');
      const c = await loaded(file, 1200);
      c.retain(() => true);
      for (let i = 0; i < 3008; i++) c.update(rel(0), { md5: (i % 16).toString(16).repeat(32) });
      let once = false;
      const restore = patchWrite(() => {
        if (!once) {
          once = true;
          c.delete(rel(10));
          c.set(rel(11), entry(1111));
          c.set('during-1.0.tar.gz', entry(5));
        }
        return null;
      });
      try {
        await c.flush();
      } finally {
        restore();
      }
      expect(once, 'the changes came mid-compaction').to.equal(true);
      const check = (x: FileDigestCache): void => {
        expect(x.lookup(rel(10), stamp(11))).to.equal(undefined);
        expect(x.lookup(rel(11), stamp(12))).to.equal(undefined);
        expect(x.lookup(rel(11), stamp(1111))?.sha256).to.equal(SHA);
        expect(x.lookup('during-1.0.tar.gz', stamp(5))?.sha256).to.equal(SHA);
        expect(x.lookup(rel(0), stamp(1))?.md5).to.equal('f'.repeat(32));
        expect(x.size).to.equal(1200);
      };
      check(c);
      await c.flush();
      check(c);
      await c.close();
      const d = new FileDigestCache(file, { scope: ROOT });
      await d.load();
      check(d);
      await d.close();
    });

    it('looked up in the order of the file (a warm start), finds live records only: superseded and deleted ones are skipped', async function () {
      const file = path.join(dir, 'c');
      const a = await loaded(file, 300);
      await a.close();
      // A tail that supersedes and deletes records of the snapshot.
      const b = new FileDigestCache(file, { scope: ROOT });
      await b.load();
      b.update(rel(20), { md5: 'e'.repeat(32) });
      b.delete(rel(21));
      await b.close();
      expect(parseCache(await fsp.readFile(file), ROOT)).to.include({ records: 302, tail: 2 });
      const c = new FileDigestCache(file, { scope: ROOT });
      await c.load();
      const seen = Array.from({ length: 300 }, (_, i) => c.lookup(rel(i), stamp(i + 1)));
      expect(seen[20]?.md5).to.equal('e'.repeat(32));
      expect(seen[21]).to.equal(undefined);
      expect(seen.filter((e) => e?.md5 === 'c'.repeat(32)).length).to.equal(298);
      // Changed since the load, during the scan.
      c.delete(rel(101));
      c.update(rel(102), { md5: 'd'.repeat(32) });
      expect(c.lookup(rel(100), stamp(101))?.md5).to.equal('c'.repeat(32));
      expect(c.lookup(rel(101), stamp(102))).to.equal(undefined);
      expect(c.lookup(rel(102), stamp(103))?.md5).to.equal('d'.repeat(32));
      expect(c.lookup(rel(103), stamp(104))?.md5).to.equal('c'.repeat(32));
      // Every entry looked up is kept by retain without asking (one set since the load is asked about).
      const asked: string[] = [];
      c.retain((r) => {
        asked.push(r);
        return false;
      });
      expect(asked).to.deep.equal([rel(102)]);
      expect(c.size).to.equal(297);
      await c.close();
    });

    it('a cache file removed or replaced under the running process: answers stay right and the next write puts the entries back', async function () {
      const file = path.join(dir, 'c');
      const c = await loaded(file, 100);
      c.retain(() => true);
      await fsp.rm(file);
      expect(c.lookup(rel(5), stamp(6))?.sha256, 'still reads the file it opened').to.equal(SHA);
      c.set('x-1.0.tar.gz', entry(9));
      await c.flush();
      let d = new FileDigestCache(file, { scope: ROOT });
      await d.load();
      expect(d.size).to.equal(101);
      expect(d.lookup(rel(99), stamp(100))?.sha256).to.equal(SHA);
      await d.close();
      // Replaced (a cache of another root copied over it): never appended to, rewritten.
      await writeSample(path.join(dir, 'other'));
      await fsp.rename(path.join(dir, 'other'), file);
      expect(c.lookup(rel(5), stamp(6))?.sha256).to.equal(SHA);
      expect(c.lookup(SAMPLE[0][0], stampOf(SAMPLE[0][1]))).to.equal(undefined);
      c.delete(rel(5));
      await c.flush();
      d = new FileDigestCache(file, { scope: ROOT });
      await d.load();
      expect(d.size).to.equal(100);
      expect(d.lookup(rel(5), stamp(6))).to.equal(undefined);
      expect(d.lookup('x-1.0.tar.gz', stamp(9))?.sha256).to.equal(SHA);
      expect(d.lookup(SAMPLE[0][0], stampOf(SAMPLE[0][1]))).to.equal(undefined);
      await d.close();
      await c.close();
    });
  });
});
