// The digest cache: an append-only journal of tab-separated lines, keyed by path, size, mtime.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DigestCache, decodeLine, encodeEntry, type CacheEntry } from '../lib/catalog/cache.js';

const SHA = 'a'.repeat(64);
const MD_SHA = 'b'.repeat(64);

function entry(size: number, extra: Partial<CacheEntry> = {}): CacheEntry {
  return { size, mtimeMs: 1700000000123.456, sha256: SHA, ...extra };
}

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
    expect(decodeLine('S\tx\t1\t2\tnot-a-sha\t\t\tu\t\t\t\t\t\t\t')).to.equal(null);
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
    expect(b.lookup('a.whl', 1, entry(1).mtimeMs)).to.equal(undefined);
    expect(b.lookup('b.whl', 2, entry(2).mtimeMs)?.md5).to.equal('e'.repeat(32));
    expect(b.lookup('c.whl', 3, 17000)).to.equal(undefined);
    expect(b.size).to.equal(1);
  });

  it('treats an entry whose size or mtime changed as stale', async function () {
    const c = new DigestCache(path.join(dir, 'c'));
    c.set('a.whl', entry(10));
    expect(c.lookup('a.whl', 10, entry(10).mtimeMs)).to.not.equal(undefined);
    expect(c.lookup('a.whl', 11, entry(10).mtimeMs)).to.equal(undefined);
    expect(c.lookup('a.whl', 10, entry(10).mtimeMs + 1)).to.equal(undefined);
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
    expect(again.lookup('keep.whl', 1, entry(1).mtimeMs)?.md5).to.equal((1499).toString(16).padStart(32, '0'));
  });

  it('ignores a cache file of another format, and rewrites it', async function () {
    const file = path.join(dir, 'c');
    await fsp.writeFile(file, '{"format":"pypi-lite-cache","version":1,"entries":{}}');
    const warnings: string[] = [];
    const c = new DigestCache(file, (m) => warnings.push(m));
    await c.load();
    expect(c.size).to.equal(0);
    expect(warnings.join()).to.match(/unknown format/);
    c.set('a.whl', entry(1));
    await c.flush();
    expect((await fsp.readFile(file, 'utf8')).split('\n')[0]).to.equal('pypi-lite-cache 2');
  });
});
