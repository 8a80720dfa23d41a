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
import { YankStore } from '../lib/catalog/yank.js';
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

  it('a large directory, its names parsed by the listing worker, is indexed as the main thread indexes it: at a cold start, and at a warm one from the digest cache', async function () {
    this.timeout(120_000);
    const root = path.join(base, 'root');
    await fsp.mkdir(root);
    const names: string[] = [];
    // Enough for a listing worker (2,048 entries and up): wheels of 60 projects, sdists whose
    // file names keep a dotted spelling, real wheels whose metadata Name differs from their
    // file name's spelling (and one that moves its file to another project), a name no
    // distribution has.
    for (let i = 0; i < 2400; i++) names.push(`pkg_${i % 60}-1.${Math.floor(i / 60)}-py3-none-any.whl`);
    for (let i = 0; i < 30; i++) names.push(`Old.Style${i % 10}-0.${i}.tar.gz`);
    names.push('bad-name-x.whl');
    for (let i = 0; i < names.length; i += 500) await Promise.all(names.slice(i, i + 500).map((n) => fsp.writeFile(path.join(root, n), n)));
    for (const [name, version] of [['Real.Name', '1.0'], ['Real.Name', '2.0'], ['pkg_7', '9.0']] as const) {
      const w = buildWheel(name, version);
      await fsp.writeFile(path.join(root, w.filename), Buffer.concat(w.parts));
    }
    const moved = buildWheel('Elsewhere', '3.0');
    await fsp.writeFile(path.join(root, 'pkg_8-3.0-py3-none-any.whl'), Buffer.concat(moved.parts));
    const silent = pino({ level: 'silent' });
    const catalogOf = async (cacheDir: string): Promise<{ hashed: number; projects: unknown[] }> => {
      indexer = new Indexer({ stores: [new FsStore(root, silent)], cacheDir, workers: 2, watch: false }, silent);
      await indexer.start();
      await indexer.whenIdle();
      const projects = [...indexer.catalog.projects()].map((p) => [p.name, p.displayName, [...p.files].map((f) => [f.relPath, f.version, f.displayName, f.sha256, f.metadata?.name ?? null]).sort()]).sort();
      const hashed = indexer.filesHashed;
      await indexer.close();
      indexer = null;
      return { hashed, projects };
    };
    const cache = path.join(base, 'cache');
    const cold = await catalogOf(cache);
    const warm = await catalogOf(cache);
    // The reference: the main thread lists and parses (the listing worker dies at once).
    process.env.PYPI_LITE_TEST_LIST_WORKER_EXIT = '0';
    let reference: { hashed: number; projects: unknown[] };
    try {
      reference = await catalogOf(path.join(base, 'cache-ref'));
    } finally {
      delete process.env.PYPI_LITE_TEST_LIST_WORKER_EXIT;
    }
    const files = names.length - 1 + 4;
    expect(cold.hashed).to.equal(files);
    expect(warm.hashed, 'a warm start reads no file').to.equal(0);
    expect(reference.hashed).to.equal(files);
    expect(cold.projects).to.deep.equal(reference.projects);
    expect(warm.projects).to.deep.equal(reference.projects);
    // What the names and the metadata say, as indexed.
    const project = (name: string) => (reference.projects as [string, string, unknown[]][]).find((p) => p[0] === name);
    expect(project('old-style3')?.[1]).to.equal('Old.Style3');
    expect(project('real-name')?.[1]).to.equal('Real.Name');
    expect(project('elsewhere')?.[2]).to.have.length(1);
    expect(project('pkg-8')?.[2]).to.have.length(40);
    expect(project('pkg-7')?.[2]).to.have.length(41);
  });

  it('a yank by file name applies to that file wherever it sits under the root, a release yank to each file of the release', async function () {
    const root = path.join(base, 'root');
    await fsp.mkdir(path.join(root, 'sub'), { recursive: true });
    await fsp.writeFile(path.join(root, 'sub', 'demo-1.0.tar.gz'), 'a');
    await fsp.writeFile(path.join(root, 'demo-1.1.tar.gz'), 'b');
    await fsp.writeFile(path.join(root, 'demo-2.0.tar.gz'), 'c');
    await fsp.writeFile(path.join(root, 'sub', 'demo-2.0-py3-none-any.whl'), 'd');
    await fsp.writeFile(path.join(root, 'yanked.txt'), 'demo-1.0.tar.gz gone\nDemo==2.0.0 replaced\n');
    const silent = pino({ level: 'silent' });
    indexer = new Indexer({ stores: [new FsStore(root, silent)], cacheDir: path.join(base, 'cache'), workers: 1, watch: false }, silent);
    const yanks = new YankStore([root]);
    await yanks.load();
    indexer.yanks = yanks;
    await indexer.start();
    await indexer.whenIdle();
    const yankOf = (key: string): string | null | undefined => {
      const f = indexer!.catalog.fileAt(key);
      return f ? (f.yank?.reason ?? null) : undefined;
    };
    expect(yankOf('sub/demo-1.0.tar.gz')).to.equal('gone');
    expect(yankOf('demo-1.1.tar.gz')).to.equal(null);
    expect(yankOf('demo-2.0.tar.gz')).to.equal('replaced');
    expect(yankOf('sub/demo-2.0-py3-none-any.whl')).to.equal('replaced');
    // Applied again when the list changes.
    await fsp.writeFile(path.join(root, 'yanked.txt'), 'demo-1.1.tar.gz\n');
    await yanks.load();
    indexer.refreshYanks(root);
    expect([yankOf('sub/demo-1.0.tar.gz'), yankOf('demo-1.1.tar.gz'), yankOf('demo-2.0.tar.gz')]).to.deep.equal([null, '', null]);
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

