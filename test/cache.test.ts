// The digest cache: an append-only journal of tab-separated lines, keyed by path, size, mtime,
// inode and ctime.

import { pino } from 'pino';
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DigestCache, decodeLine, encodeEntry, type CacheEntry } from '../lib/catalog/cache.js';

const SHA = 'a'.repeat(64);
const MD_SHA = 'b'.repeat(64);

function entry(size: number, extra: Partial<CacheEntry> = {}): CacheEntry {
  return { size, mtimeMs: 1700000000123.456, ino: 4242, ctimeMs: 1700000000456.789, sha256: SHA, ...extra };
}

/** The stamp of entry(size) (what the file on disk would show if unchanged). */
const stamp = (size: number) => ({ size, mtimeMs: entry(size).mtimeMs, ino: entry(size).ino, ctimeMs: entry(size).ctimeMs });

describe('digest cache', function () {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-cache-test-'));
  });
  afterEach(async () => fsp.rm(dir, { recursive: true, force: true }));

  it('round-trips every field, including names with tabs, newlines and backslashes', function () {
    const e = entry(42, {
      md5: 'c'.repeat(32),
      blake2b256: 'd'.repeat(64),
      metadata: { sha256: MD_SHA, size: 999, name: 'we\tird\nname\\x', version: '1.0', requiresPython: '>=3.8,<4', servable: true },
      metadataError: 'none\there',
    });
    const rel = 'sub dir/we\tird\\name-1.0.tar.gz';
    const line = encodeEntry(rel, e);
    expect(line).to.not.contain('\n');
    expect(decodeLine(line)).to.deep.equal([rel, e]);
    expect(decodeLine(encodeEntry('x.whl', entry(1, { metadata: null })))).to.deep.equal(['x.whl', entry(1, { metadata: null })]);
    expect(decodeLine(encodeEntry('y.whl', entry(1)))).to.deep.equal(['y.whl', entry(1)]);
  });

  it('rejects malformed lines instead of trusting them', function () {
    expect(decodeLine('S\tx\t1\t2\t3\t4\tnot-a-sha\t\t\tu\t\t\t\t\t\t\t')).to.equal(null);
    expect(decodeLine(`S\tx\t1\t2\t\t4\t${SHA}\t\t\tu\t\t\t\t\t\t\t`), 'no inode').to.equal(null);
    // A line of format 2 (no inode, no ctime) is never taken for a format-3 one.
    expect(decodeLine(`S\tx\t1\t2\t${SHA}\t\t\tu\t\t\t\t\t\t\t`)).to.equal(null);
    expect(decodeLine('S\tx\t1')).to.equal(null);
    expect(decodeLine('garbage')).to.equal(null);
    expect(decodeLine('D\tgone.whl')).to.deep.equal(['gone.whl', null]);
  });

  it('persists by appending, survives a torn last line, and honours deletes', async function () {
    const file = path.join(dir, 'c');
    const a = new DigestCache(file);
    await a.load();
    a.set('a.whl', entry(1));
    a.set('b.whl', entry(2));
    await a.flush();
    a.delete('a.whl');
    a.update('b.whl', { md5: 'e'.repeat(32) });
    await a.flush();
    await fsp.appendFile(file, 'S\tc.whl\t3\t17000'); // a crash in the middle of an append
    const b = new DigestCache(file);
    await b.load();
    expect(b.lookup('a.whl', stamp(1))).to.equal(undefined);
    expect(b.lookup('b.whl', stamp(2))?.md5).to.equal('e'.repeat(32));
    expect(b.lookup('c.whl', stamp(3))).to.equal(undefined);
    expect(b.size).to.equal(1);
  });

  it('treats an entry whose size, mtime, inode or ctime changed as stale', function () {
    const c = new DigestCache(path.join(dir, 'c'));
    c.set('a.whl', entry(10));
    expect(c.lookup('a.whl', stamp(10))).to.not.equal(undefined);
    expect(c.lookup('a.whl', { ...stamp(10), size: 11 })).to.equal(undefined);
    expect(c.lookup('a.whl', { ...stamp(10), mtimeMs: stamp(10).mtimeMs + 1 })).to.equal(undefined);
    // Same size and mtime, other bytes: rewritten in place (new ctime) or renamed over (new inode).
    expect(c.lookup('a.whl', { ...stamp(10), ctimeMs: stamp(10).ctimeMs + 1 }), 'ctime').to.equal(undefined);
    expect(c.lookup('a.whl', { ...stamp(10), ino: 4243 }), 'inode').to.equal(undefined);
  });

  it('ignores a cache of the previous format (no inode or ctime) instead of trusting it', async function () {
    const file = path.join(dir, 'c');
    await fsp.writeFile(file, `pypi-lite-cache 2\nS\ta.whl\t10\t${entry(10).mtimeMs}\t${SHA}\t\t\tu\t\t\t\t\t\t\t\n`);
    const warnings: string[] = [];
    const c = new DigestCache(file, pino({}, { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) }));
    await c.load();
    expect(c.size).to.equal(0);
    expect(warnings.join()).to.match(/older format/);
    c.set('b.whl', entry(1));
    await c.flush();
    const text = await fsp.readFile(file, 'utf8');
    expect(text.split('\n')[0]).to.equal('pypi-lite-cache 3');
    expect(text).to.not.contain('a.whl');
  });

  it('appends a line per change and compacts a journal that is mostly superseded lines', async function () {
    const file = path.join(dir, 'c');
    const c = new DigestCache(file);
    await c.load();
    c.set('keep.whl', entry(1));
    await c.flush();
    const linesAfterFirst = (await fsp.readFile(file, 'utf8')).trim().split('\n').length;
    for (let i = 0; i < 1500; i++) c.update('keep.whl', { md5: i.toString(16).padStart(32, '0') });
    await c.flush();
    const text = await fsp.readFile(file, 'utf8');
    expect(linesAfterFirst).to.equal(2);
    expect(text.trim().split('\n').length, 'compacted to header + one line').to.equal(2);
    const again = new DigestCache(file);
    await again.load();
    expect(again.lookup('keep.whl', stamp(1))?.md5).to.equal((1499).toString(16).padStart(32, '0'));
  });

  it('ignores a cache file of another format, and rewrites it', async function () {
    const file = path.join(dir, 'c');
    await fsp.writeFile(file, '{"format":"pypi-lite-cache","version":1,"entries":{}}');
    const warnings: string[] = [];
    const c = new DigestCache(file, pino({}, { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) }));
    await c.load();
    expect(c.size).to.equal(0);
    expect(warnings.join()).to.match(/unknown format/);
    c.set('a.whl', entry(1));
    await c.flush();
    expect((await fsp.readFile(file, 'utf8')).split('\n')[0]).to.equal('pypi-lite-cache 3');
  });
});
