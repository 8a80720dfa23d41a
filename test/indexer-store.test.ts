// The indexer reaches files only through their PackageStore: run in-process over a store that
// has no change feed (as an object store may not) and records what is asked of it. The scan is
// its listing, hashing reads what localFile hands out, uploads and remove_pkg put and remove
// through it, and a rescan brings the index in line with a new listing.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { buildWheel } from '../bench/soak.js';
import { Indexer } from '../lib/catalog/indexer.js';
import { FsStore } from '../lib/store/fs-store.js';
import type { ListOptions, LocalFile, OpenOptions, PackageStore, PutResult, PutSource, StoreEntry, StoreObject } from '../lib/store/types.js';

/** An FsStore without watch(), counting calls: what the indexer asks of a store. */
class RecordingStore implements PackageStore {
  readonly calls: string[] = [];
  constructor(private readonly inner: FsStore) {}
  get id(): string {
    return this.inner.id;
  }
  get stagingDir(): string {
    return this.inner.stagingDir;
  }
  list(opts?: ListOptions): AsyncIterable<StoreEntry[]> {
    this.calls.push('list');
    return this.inner.list(opts);
  }
  stat(key: string): Promise<StoreEntry | null> {
    this.calls.push(`stat ${key}`);
    return this.inner.stat(key);
  }
  open(key: string, opts?: OpenOptions): Promise<StoreObject | null> {
    this.calls.push(`open ${key}`);
    return this.inner.open(key, opts);
  }
  putIfAbsent(key: string, source: PutSource): Promise<PutResult> {
    this.calls.push(`putIfAbsent ${key}`);
    return this.inner.putIfAbsent(key, source);
  }
  put(key: string, source: PutSource): Promise<StoreEntry> {
    this.calls.push(`put ${key}`);
    return this.inner.put(key, source);
  }
  remove(key: string): Promise<boolean> {
    this.calls.push(`remove ${key}`);
    return this.inner.remove(key);
  }
  localFile(key: string): Promise<LocalFile> {
    this.calls.push(`localFile ${key}`);
    return this.inner.localFile(key);
  }
}

describe('indexer over a PackageStore (in-process, no change feed)', function () {
  let base: string;
  let indexer: Indexer | null = null;
  beforeEach(async () => {
    base = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-indexer-store-'));
  });
  afterEach(async () => {
    await indexer?.close();
    indexer = null;
    await fsp.rm(base, { recursive: true, force: true });
  });

  it('lists the store, hashes through localFile, and a rescan finds what was added and removed', async function () {
    const root = path.join(base, 'root');
    await fsp.mkdir(path.join(root, 'sub'), { recursive: true });
    const a = buildWheel('store-demo', '1.0');
    const b = buildWheel('store-demo', '2.0');
    await fsp.writeFile(path.join(root, a.filename), Buffer.concat(a.parts));
    await fsp.writeFile(path.join(root, 'sub', b.filename), Buffer.concat(b.parts));
    await fsp.writeFile(path.join(root, 'README.txt'), 'not a package');
    const store = new RecordingStore(new FsStore(root, pino({ level: 'silent' })));
    indexer = new Indexer({ stores: [store], cacheDir: path.join(base, 'cache'), workers: 1, watch: true }, pino({ level: 'silent' }));
    await fsp.mkdir(path.join(base, 'cache'));
    await indexer.start();
    await indexer.whenIdle();

    const files = [...(indexer.catalog.project('store-demo')?.files.values() ?? [])];
    expect(files.map((f) => [f.relPath, f.sha256]).sort()).to.deep.equal(
      [
        [a.filename, a.sha256],
        [`sub/${b.filename}`, b.sha256],
      ].sort(),
    );
    for (const f of files) expect(f.store).to.equal(store);
    expect(store.calls.filter((c) => c === 'list')).to.have.length(1);
    expect(store.calls.filter((c) => c.startsWith('localFile')).sort()).to.deep.equal([`localFile ${a.filename}`, `localFile sub/${b.filename}`].sort());

    // No feed: a change is only seen by the next listing.
    const c = buildWheel('store-demo', '3.0');
    await fsp.writeFile(path.join(root, c.filename), Buffer.concat(c.parts));
    await fsp.rm(path.join(root, 'sub', b.filename));
    await indexer.rescan();
    await indexer.whenIdle();
    const after = new Map([...(indexer.catalog.project('store-demo')?.files.values() ?? [])].map((f) => [f.relPath, f.sha256]));
    expect([...after.entries()].sort()).to.deep.equal(
      [
        [a.filename, a.sha256],
        [c.filename, c.sha256],
      ].sort(),
    );
    // The unchanged file was not read again.
    expect(store.calls.filter((x) => x === `localFile ${a.filename}`)).to.have.length(1);
  });

  it('a file replaced under its key: open(expect) refuses it, the next listing re-indexes it with its own digest', async function () {
    const root = path.join(base, 'root');
    await fsp.mkdir(root);
    const a = buildWheel('swap-demo', '1.0');
    await fsp.writeFile(path.join(root, a.filename), Buffer.concat(a.parts));
    const store = new RecordingStore(new FsStore(root, pino({ level: 'silent' })));
    indexer = new Indexer({ stores: [store], cacheDir: null, workers: 1, watch: false }, pino({ level: 'silent' }));
    await indexer.start();
    await indexer.whenIdle();
    const first = indexer.catalog.fileAt(a.filename);
    expect(first?.sha256).to.equal(a.sha256);
    // Another file renamed over it: the download route's open refuses it until it is indexed.
    const other = buildWheel('swap-demo', '1.0');
    const tmp = path.join(root, '.other.tmp');
    await fsp.writeFile(tmp, Buffer.concat(other.parts));
    await fsp.rename(tmp, path.join(root, a.filename));
    expect(await store.open(a.filename, { expect: first!.identity })).to.equal(null);
    await indexer.rescan();
    await indexer.whenIdle();
    expect(indexer.catalog.fileAt(a.filename)?.sha256).to.equal(other.sha256);
  });

  it("what a store recalls is checked: a digest that is not one is not taken, the file is read for its own", async function () {
    const root = path.join(base, 'root');
    await fsp.mkdir(root);
    const a = buildWheel('recall-demo', '1.0');
    await fsp.writeFile(path.join(root, a.filename), Buffer.concat(a.parts));
    const store = new RecordingStore(new FsStore(root, pino({ level: 'silent' })));
    // A bucket's index (S3 roots) is data another process wrote: here, garbage where a digest goes.
    Object.assign(store, { recall: () => ({ sha256: 'not-a-digest'.padEnd(64, '!'), metadata: null }) });
    indexer = new Indexer({ stores: [store], cacheDir: null, workers: 1, watch: false }, pino({ level: 'silent' }));
    await indexer.start();
    await indexer.whenIdle();
    expect(indexer.catalog.fileAt(a.filename)?.sha256).to.equal(a.sha256);
    expect(store.calls).to.include(`localFile ${a.filename}`);
  });
});

