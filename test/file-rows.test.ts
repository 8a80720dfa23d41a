// The compact per-file storage behind the catalog: the digest cache's key index (an
// open-addressing table over record offsets) and the typed-array rows of IndexedFile.

import { expect } from 'chai';
import { KeyIndex, keyHash, type RecordSource } from '../lib/catalog/key-index.js';
import { Catalog, IndexedFile, type DistFile } from '../lib/catalog/catalog.js';
import { columns } from '../lib/catalog/file-columns.js';
import { describeName, parseFilename } from '../lib/catalog/filename.js';
import type { PackageStore } from '../lib/store/types.js';

const hashOf = (k: string): number => keyHash(Buffer.from(k), 0, Buffer.byteLength(k));

/** Records laid out as the cache writes them: u32(len) u8(kind) u16(keyLen) key, then a body byte. */
function recordsOf(keys: string[]): { buf: Buffer; offsets: number[] } {
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  let at = 0;
  for (const k of keys) {
    const key = Buffer.from(k, 'utf8');
    const rec = Buffer.alloc(4 + 1 + 2 + key.length + 1);
    rec.writeUInt32LE(rec.length - 4, 0);
    rec[4] = 1;
    rec.writeUInt16LE(key.length, 5);
    key.copy(rec, 7);
    rec[rec.length - 1] = 0xee;
    offsets.push(at);
    parts.push(rec);
    at += rec.length;
  }
  return { buf: Buffer.concat(parts), offsets };
}

describe('KeyIndex: record keys to offsets without a string per key', function () {
  it('finds every key after growing many times, and nothing else', function () {
    const keys = Array.from({ length: 5000 }, (_, i) => `pkg-${i}/demo_${i}-1.0-py3-none-any.whl`);
    keys.push('ünïcode/ß-1.0.tar.gz', 'a', 'x'.repeat(300));
    const { buf, offsets } = recordsOf(keys);
    const index = new KeyIndex(buf);
    for (const off of offsets) index.add(off);
    expect(index.size).to.equal(keys.length);
    keys.forEach((k, i) => expect(index.get(k), k).to.equal(offsets[i]));
    for (const miss of ['pkg-5000/demo_5000-1.0-py3-none-any.whl', '', 'A', 'pkg-1/demo_1-1.0-py3-none-any.wh', 'x'.repeat(299), 'x'.repeat(70_000)]) {
      expect(index.get(miss), miss.slice(0, 40)).to.equal(undefined);
    }
    expect(index.keyAt(offsets[5000])).to.equal('ünïcode/ß-1.0.tar.gz');
    expect([...index.offsets()].sort((a, b) => a - b)).to.deep.equal(offsets);
  });

  it('a later record of the same key replaces the earlier; removed keys are gone and can come back', function () {
    const { buf, offsets } = recordsOf(['a.whl', 'b.whl', 'a.whl', 'c.whl']);
    const index = new KeyIndex(buf);
    for (const off of offsets) index.add(off);
    expect(index.size).to.equal(3);
    expect(index.get('a.whl')).to.equal(offsets[2]);
    expect(index.remove('b.whl')).to.equal(true);
    expect(index.remove('b.whl')).to.equal(false);
    expect(index.get('b.whl')).to.equal(undefined);
    // A key probed past the removed slot is still found (the slot is a tombstone, not empty).
    expect(index.get('c.whl')).to.equal(offsets[3]);
    expect(index.removeKeyOf(offsets[0])).to.equal(true);
    expect(index.get('a.whl')).to.equal(undefined);
    index.add(offsets[1]);
    expect(index.get('b.whl')).to.equal(offsets[1]);
    expect(index.size).to.equal(2);
  });

  it('many removals and re-adds keep lookups right (tombstones are reclaimed by rehashing)', function () {
    const keys = Array.from({ length: 2000 }, (_, i) => `k${i}.whl`);
    const { buf, offsets } = recordsOf(keys);
    const index = new KeyIndex(buf, 16);
    for (let round = 0; round < 5; round++) {
      for (const off of offsets) index.add(off);
      for (let i = round % 2; i < keys.length; i += 2) expect(index.remove(keys[i])).to.equal(true);
      keys.forEach((k, i) => expect(index.get(k), `${round} ${k}`).to.equal(i % 2 === round % 2 ? undefined : offsets[i]));
    }
    expect(index.size).to.equal(1000);
  });
  it('knows which keys were asked for, across growth (the cache keeps those without asking again)', function () {
    const keys = Array.from({ length: 300 }, (_, i) => `f${i}.whl`);
    const { buf, offsets } = recordsOf(keys);
    const index = new KeyIndex(buf, 4);
    for (const off of offsets.slice(0, 100)) index.add(off);
    for (let i = 0; i < 100; i += 3) index.get(keys[i]);
    for (const off of offsets.slice(100)) index.add(off);
    index.get(keys[150]);
    const unasked = new Set([...index.offsets(true)]);
    keys.forEach((k, i) => expect(unasked.has(offsets[i]), k).to.equal(!(i === 150 || (i < 100 && i % 3 === 0))));
    // A newer record of a key asked for is a new entry: not asked for yet.
    index.add(offsets[150]);
    expect(new Set(index.offsets(true)).has(offsets[150])).to.equal(true);
  });
});

describe('KeyIndex over records it must read (the cache file once the scan is done)', function () {
  /** The records of recordsOf, read one at a time into a buffer of their own, counting the reads. */
  class FromFile implements RecordSource {
    buf = Buffer.alloc(0);
    reads = 0;
    constructor(private readonly file: Buffer) {}
    at(off: number): number {
      this.reads++;
      this.buf = Buffer.from(this.file.subarray(off, off + 4 + this.file.readUInt32LE(off)));
      return 0;
    }
  }

  it('reads a record only when its key hash matches: at most one read per lookup, none for a miss (almost always)', function () {
    const keys = Array.from({ length: 20_000 }, (_, i) => `pkg-${i % 500}/demo_${i}-1.0-py3-none-any.whl`);
    const { buf, offsets } = recordsOf(keys);
    const src = new FromFile(buf);
    const index = new KeyIndex(src, 16);
    for (const off of offsets) index.add(off);
    expect(index.size).to.equal(keys.length);
    src.reads = 0;
    keys.forEach((k, i) => expect(index.get(k), k).to.equal(offsets[i]));
    expect(src.reads).to.equal(keys.length);
    src.reads = 0;
    for (let i = 0; i < 20_000; i++) expect(index.get(`pkg-${i}/other_${i}-1.0.tar.gz`)).to.equal(undefined);
    expect(src.reads, 'a miss reads only on a 32-bit hash collision').to.be.below(5);
    expect(index.remove(keys[7])).to.equal(true);
    expect(index.get(keys[7])).to.equal(undefined);
    index.addNew(offsets[7], hashOf(keys[7]));
    expect(index.get(keys[7])).to.equal(offsets[7]);
    expect(index.keyAt(offsets[123])).to.equal(keys[123]);
  });
});

describe('IndexedFile rows', function () {
  const store = { id: '/srv/packages' } as Pick<PackageStore, 'id'> as PackageStore;
  const make = (name: string): IndexedFile => new IndexedFile(store, name, describeName(name)!, 1234, 1_700_000_000_123.5);

  it('keeps size, times, identity, digests and metadata exactly, per file', function () {
    const a = make('demo-1.0-py3-none-any.whl');
    const b = make('demo-1.0.tar.gz');
    expect(a.sha256).to.equal(null);
    expect(a.metadata).to.equal(undefined);
    expect(a.identity).to.equal(undefined);
    a.identity = { dev: 2 ** 40 + 3, ino: 2 ** 50 + 7, ctimeMs: 1_700_000_000_456.25 };
    a.sha256 = 'ab'.repeat(32);
    a.metadata = { sha256: 'cd'.repeat(32), size: 99, name: 'Demo', version: '1.0', requiresPython: '>=3.8', servable: true };
    b.sha256 = '01'.repeat(32);
    b.metadata = null;
    expect(a).to.deep.include({ size: 1234, mtimeMs: 1_700_000_000_123.5, sha256: 'ab'.repeat(32) });
    expect(a.identity).to.deep.equal({ dev: 2 ** 40 + 3, ino: 2 ** 50 + 7, ctimeMs: 1_700_000_000_456.25 });
    expect(a.metadata).to.deep.equal({ sha256: 'cd'.repeat(32), size: 99, name: 'Demo', version: '1.0', requiresPython: '>=3.8', servable: true });
    expect(a.metadataName).to.equal('Demo');
    expect(a.digested).to.equal(true);
    expect(b).to.deep.include({ sha256: '01'.repeat(32), metadata: null, metadataName: null, digested: true });
    a.sha256 = null;
    a.metadata = undefined;
    expect(a).to.deep.include({ sha256: null, metadata: undefined, digested: false, metadataName: null });
    expect(b.sha256, 'rows are separate').to.equal('01'.repeat(32));
  });

  it('20,000 files keep their own numbers, digests and flags while the rows grow past 4,096 several times', function () {
    const hexOf = (i: number): string => i.toString(16).padStart(8, '0').repeat(8);
    const files: IndexedFile[] = [];
    for (let i = 0; i < 20_000; i++) {
      // Each file is set in full before the next ones make the rows grow.
      const f = make(`many${i}-1.0-py3-none-any.whl`);
      f.sha256 = hexOf(i);
      f.identity = { dev: i, ino: 2 ** 40 + i, ctimeMs: i / 4 };
      f.metadata = i % 3 === 0 ? null : { sha256: hexOf(i + 1), size: i, name: `many${i}`, version: '1.0', requiresPython: null, servable: i % 2 === 0 };
      files.push(f);
    }
    files.forEach((f, i) => {
      expect({ sha256: f.sha256, identity: f.identity, size: f.size, mtimeMs: f.mtimeMs }, `file ${i}`).to.deep.equal({ sha256: hexOf(i), identity: { dev: i, ino: 2 ** 40 + i, ctimeMs: i / 4 }, size: 1234, mtimeMs: 1_700_000_000_123.5 });
      if (i % 3 === 0) expect(f.metadata, `file ${i}`).to.equal(null);
      else expect(f.metadata, `file ${i}`).to.deep.include({ sha256: hexOf(i + 1), size: i, servable: i % 2 === 0 });
    });
  });

  it('refuses a digest that is not 64 hex characters (a bug, never stored)', function () {
    const a = make('demo-2.0-py3-none-any.whl');
    a.sha256 = 'ef'.repeat(32);
    expect(() => (a.sha256 = 'zz'.repeat(32))).to.throw(RangeError);
    expect(() => (a.sha256 = 'ab')).to.throw(RangeError);
    expect(a.sha256).to.equal('ef'.repeat(32));
  });

  it("a file the catalog let go of gives its row back only once it is garbage, and the row's next file starts empty", async function () {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) this.skip();
    const catalog = new Catalog();
    // Rows of earlier tests' garbage are given back first, so that only this test's file counts.
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await settle();
    const before = columns.rows;
    const held = [make('gone-1.0-py3-none-any.whl')];
    held[0].sha256 = 'aa'.repeat(32);
    catalog.upsert(held[0]);
    catalog.remove(store.id, held[0].relPath);
    expect(columns.rows).to.equal(before + 1);
    await settle();
    expect(columns.rows, 'still held: the row stays').to.equal(before + 1);
    expect(held[0].sha256).to.equal('aa'.repeat(32));
    held.pop();
    for (let i = 0; i < 5 && columns.rows !== before; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(columns.rows).to.equal(before);
    const next = make('next-1.0-py3-none-any.whl');
    expect(next).to.deep.include({ sha256: null, metadata: undefined, identity: undefined, size: 1234 });
  });
});

describe("a project's files (ProjectFiles)", function () {
  const store = { id: '/srv/packages' } as Pick<PackageStore, 'id'> as PackageStore;
  const make = (name: string): IndexedFile => new IndexedFile(store, name, describeName(name)!, 1, 1);
  const names = (c: Catalog, project: string): string[] => [...(c.project(project)?.files.values() ?? [])].map((f) => f.relPath);

  it('keeps the order files were added in through removals, re-adds and compaction, and counts them', function () {
    const c = new Catalog();
    const all = Array.from({ length: 41 }, (_, i) => `demo-1.${i}-py3-none-any.whl`);
    for (const n of all) c.upsert(make(n));
    // Every other file goes (the list compacts once half of it is empty), then one comes back.
    for (let i = 0; i < all.length; i += 2) c.remove(store.id, all[i]);
    const left = all.filter((_, i) => i % 2 === 1);
    expect(names(c, 'demo')).to.deep.equal(left);
    expect(c.project('demo')!.files.size).to.equal(20);
    c.upsert(make(all[0]));
    // A file replaced under its key moves to the end, as it did in a Map by key.
    c.upsert(make(left[0]));
    expect(names(c, 'demo')).to.deep.equal([...left.slice(1), all[0], left[0]]);
    expect(c.size.files).to.equal(21);
    for (const n of names(c, 'demo')) c.remove(store.id, n);
    expect(c.project('demo')).to.equal(undefined);
  });

  it('a file regrouped by its metadata leaves its old project and is found in the new one; removing it from the old one is a no-op', function () {
    const c = new Catalog();
    const a = make('foo_bar-1.0-py3-none-any.whl');
    const b = make('foo_bar-2.0-py3-none-any.whl');
    c.upsert(a);
    c.upsert(b);
    c.regroup(a, 'Other.Name');
    expect(names(c, 'foo-bar')).to.deep.equal([b.relPath]);
    expect(names(c, 'other-name')).to.deep.equal([a.relPath]);
    expect(c.project('foo-bar')!.files.delete(a)).to.equal(false);
    expect(c.fileAt(a.relPath)).to.equal(a);
  });

  it('holds plain DistFile objects too (removal without an IndexedFile slot)', function () {
    const c = new Catalog();
    const plain = (n: string): DistFile => {
      const parsed = parseFilename(n)!;
      return { root: store.id, relPath: n, store, filename: n, parsed, project: parsed.project, displayName: parsed.project, version: parsed.version, size: 1, mtimeMs: 1, sha256: null, metadata: undefined, yank: null };
    };
    const files = ['p-1.0.tar.gz', 'p-2.0.tar.gz', 'p-3.0.tar.gz'].map(plain);
    for (const f of files) c.upsert(f);
    c.remove(store.id, 'p-2.0.tar.gz');
    expect(names(c, 'p')).to.deep.equal(['p-1.0.tar.gz', 'p-3.0.tar.gz']);
  });
});
