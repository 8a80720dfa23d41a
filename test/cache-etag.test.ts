// A store that knows its objects by ETag (as an object store does) instead of inode and ctime:
// the indexer caches digests under (size, ETag), a restart takes them without reading the
// objects again, and an object whose ETag changed is read again (issue 13).

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { buildWheel } from '../bench/soak.js';
import { Indexer } from '../lib/catalog/indexer.js';
import { FsStore } from '../lib/store/fs-store.js';
import type { ListOptions, LocalFile, OpenOptions, PackageStore, PutResult, PutSource, StoreEntry, StoreObject } from '../lib/store/types.js';

const log = pino({ level: 'silent' });

/** An FsStore whose entries carry an ETag (from `etags`) and no file identity; counts reads. */
class EtagStore implements PackageStore {
  readonly etags = new Map<string, string>();
  reads = 0;
  constructor(private readonly inner: FsStore) {}
  get id(): string {
    return this.inner.id;
  }
  get stagingDir(): string {
    return this.inner.stagingDir;
  }
  private strip(e: StoreEntry | null): StoreEntry | null {
    return e && { key: e.key, size: e.size, mtimeMs: e.mtimeMs, etag: this.etags.get(e.key) ?? '"1"' };
  }
  async *list(opts?: ListOptions): AsyncIterable<StoreEntry[]> {
    for await (const batch of this.inner.list(opts)) yield batch.map((e) => this.strip(e)!);
  }
  async stat(key: string): Promise<StoreEntry | null> {
    return this.strip(await this.inner.stat(key));
  }
  open(key: string, opts?: OpenOptions): Promise<StoreObject | null> {
    return this.inner.open(key, opts);
  }
  putIfAbsent(key: string, source: PutSource): Promise<PutResult> {
    return this.inner.putIfAbsent(key, source);
  }
  put(key: string, source: PutSource): Promise<StoreEntry> {
    return this.inner.put(key, source);
  }
  remove(key: string): Promise<boolean> {
    return this.inner.remove(key);
  }
  localFile(key: string): Promise<LocalFile> {
    this.reads++;
    return this.inner.localFile(key);
  }
}

describe('digest cache of a store with ETags (no inode/ctime)', function () {
  this.timeout(30_000);
  let base: string;
  const indexers: Indexer[] = [];
  beforeEach(async () => {
    base = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-cache-etag-'));
  });
  afterEach(async () => {
    for (const ix of indexers.splice(0)) await ix.close();
    await fsp.rm(base, { recursive: true, force: true });
  });

  async function run(store: EtagStore, cacheDir: string): Promise<Indexer> {
    const ix = new Indexer({ stores: [store], cacheDir, workers: 1, watch: false }, log);
    indexers.push(ix);
    await ix.start();
    const keep = setInterval(() => {}, 1000);
    await ix.whenIdle().finally(() => clearInterval(keep));
    return ix;
  }

  it('reuses digests while size and ETag match, reads an object again when its ETag changes', async () => {
    const root = path.join(base, 'root');
    const cacheDir = path.join(base, 'cache');
    await fsp.mkdir(root);
    const a = buildWheel('etag-demo', '1.0', randomBytes(2000));
    const b = buildWheel('etag-demo', '2.0', randomBytes(3000));
    for (const w of [a, b]) await fsp.writeFile(path.join(root, w.filename), Buffer.concat(w.parts));

    const first = new EtagStore(new FsStore(root, log));
    const ix1 = await run(first, cacheDir);
    expect(first.reads, 'a cold start reads both').to.equal(2);
    expect(ix1.catalog.fileAt(a.filename)?.sha256).to.equal(a.sha256);
    await ix1.close();

    const second = new EtagStore(new FsStore(root, log));
    const ix2 = await run(second, cacheDir);
    expect(second.reads, 'same size and ETag: nothing read').to.equal(0);
    expect(ix2.catalog.fileAt(a.filename)?.sha256).to.equal(a.sha256);
    expect(ix2.catalog.fileAt(b.filename)?.sha256).to.equal(b.sha256);
    await ix2.close();

    // New bytes of the same size under b's name: only the ETag tells.
    const b2 = buildWheel('etag-demo', '2.0', randomBytes(3000));
    expect(b2.size).to.equal(b.size);
    await fsp.writeFile(path.join(root, b.filename), Buffer.concat(b2.parts));
    const third = new EtagStore(new FsStore(root, log));
    third.etags.set(b.filename, '"2"');
    const ix3 = await run(third, cacheDir);
    expect(third.reads, 'only the object whose ETag changed is read').to.equal(1);
    expect(ix3.catalog.fileAt(a.filename)?.sha256).to.equal(a.sha256);
    expect(ix3.catalog.fileAt(b.filename)?.sha256).to.equal(b2.sha256);
  });
});
