// The PackageStore contract, written against the interface only: every store implementation
// runs this same suite (FsStore here; an object store adds its own harness below).

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import pino from 'pino';
import { FsStore } from '../lib/store/fs-store.js';
import { InvalidKeyError, type PackageStore, type StoreEntry, type StoreEvent } from '../lib/store/types.js';

/** What the suite needs besides the store: a way to change the stored files from outside it (another tool). */
interface Harness {
  store: PackageStore;
  /** Write a file as another program would (cp, scp, `aws s3 cp`). */
  addExternally(key: string, bytes: string): Promise<void>;
  /** A local file to put(), with these bytes. */
  staged(bytes: string): Promise<string>;
  cleanup(): Promise<void>;
}

async function listAll(store: PackageStore, prefix?: string): Promise<StoreEntry[]> {
  const out: StoreEntry[] = [];
  for await (const e of store.list(prefix === undefined ? {} : { prefix })) out.push(e);
  return out.sort((a, b) => (a.key < b.key ? -1 : 1));
}

async function readAll(store: PackageStore, key: string, range?: { start: number; end: number }): Promise<string | null> {
  const obj = await store.open(key);
  if (!obj) return null;
  try {
    return await text(obj.stream(range));
  } finally {
    await obj.close();
  }
}

function storeContract(name: string, make: () => Promise<Harness>): void {
  describe(`package store contract: ${name}`, function () {
    let h: Harness;
    let store: PackageStore;
    beforeEach(async () => {
      h = await make();
      store = h.store;
    });
    afterEach(async () => h.cleanup());

    it('lists every file with its key and size, keys in subdirectories included, dotfiles never', async function () {
      await h.addExternally('a-1.0.tar.gz', 'aaaa');
      await h.addExternally('sub/dir/b-1.0-py3-none-any.whl', 'bb');
      await h.addExternally('.hidden-1.0.tar.gz', 'x');
      await h.addExternally('.cache/c-1.0.tar.gz', 'x');
      const all = await listAll(store);
      expect(all.map((e) => [e.key, e.size])).to.deep.equal([
        ['a-1.0.tar.gz', 4],
        ['sub/dir/b-1.0-py3-none-any.whl', 2],
      ]);
      for (const e of all) expect(e.mtimeMs).to.be.a('number').and.be.greaterThan(0);
      expect((await listAll(store, 'sub')).map((e) => e.key)).to.deep.equal(['sub/dir/b-1.0-py3-none-any.whl']);
      expect(await listAll(store, 'nothing-here')).to.deep.equal([]);
    });

    it('list(accept) skips names the caller does not want', async function () {
      await h.addExternally('a-1.0.tar.gz', 'aaaa');
      await h.addExternally('README.txt', 'hello');
      const keys: string[] = [];
      for await (const e of store.list({ accept: (n) => n.endsWith('.tar.gz') })) keys.push(e.key);
      expect(keys).to.deep.equal(['a-1.0.tar.gz']);
    });

    it('stat: the entry as list shows it; null for a missing key or a directory', async function () {
      await h.addExternally('sub/a-1.0.tar.gz', 'abc');
      const [listed] = await listAll(store);
      const st = await store.stat('sub/a-1.0.tar.gz');
      expect(st).to.deep.equal(listed);
      expect(await store.stat('sub/missing-1.0.tar.gz')).to.equal(null);
      expect(await store.stat('sub')).to.equal(null);
    });

    it('open: the bytes, whole or a range, with the entry of what was opened', async function () {
      await h.addExternally('sub/a-1.0.tar.gz', '0123456789');
      const obj = await store.open('sub/a-1.0.tar.gz');
      expect(obj).to.not.equal(null);
      try {
        expect(obj!.entry.size).to.equal(10);
        expect(obj!.entry.key).to.equal('sub/a-1.0.tar.gz');
        expect(await text(obj!.stream())).to.equal('0123456789');
        expect(await text(obj!.stream({ start: 2, end: 4 }))).to.equal('234');
        expect(await text(obj!.stream({ start: 9, end: 9 }))).to.equal('9');
        if (obj!.read) {
          const buf = Buffer.alloc(4);
          expect(await obj!.read(buf, 0, 4, 6)).to.equal(4);
          expect(buf.toString()).to.equal('6789');
          expect(await obj!.read(buf, 0, 4, 10)).to.equal(0);
        }
      } finally {
        await obj!.close();
      }
      expect(await store.open('sub/missing-1.0.tar.gz')).to.equal(null);
    });

    it('open(expect): refuses other bytes than the ones indexed (a file replaced under the key)', async function () {
      await h.addExternally('a-1.0.tar.gz', 'first');
      const first = (await store.stat('a-1.0.tar.gz'))!;
      if (!first.identity) this.skip(); // stores without a file identity compare ETags instead
      await store.put('a-1.0.tar.gz', { path: await h.staged('second') });
      expect(await store.open('a-1.0.tar.gz', { expect: first.identity })).to.equal(null);
      const now = (await store.stat('a-1.0.tar.gz'))!;
      const obj = await store.open('a-1.0.tar.gz', { expect: now.identity });
      expect(obj).to.not.equal(null);
      await obj!.close();
    });

    it('putIfAbsent creates a new key (subdirectories too) and refuses an existing one', async function () {
      const r = await store.putIfAbsent('sub/new-1.0.tar.gz', { path: await h.staged('new bytes') });
      expect(r.created).to.equal(true);
      if (r.created) expect(r.entry).to.include({ key: 'sub/new-1.0.tar.gz', size: 9 });
      expect(await readAll(store, 'sub/new-1.0.tar.gz')).to.equal('new bytes');
      const again = await store.putIfAbsent('sub/new-1.0.tar.gz', { path: await h.staged('other bytes') });
      expect(again).to.deep.equal({ created: false, reason: 'exists' });
      expect(await readAll(store, 'sub/new-1.0.tar.gz')).to.equal('new bytes');
    });

    it('two concurrent putIfAbsent of one key: exactly one wins, the stored bytes are the winner’s', async function () {
      const sources = await Promise.all(['one', 'two', 'three', 'four'].map((b) => h.staged(b)));
      const results = await Promise.all(sources.map((p) => store.putIfAbsent('race-1.0.tar.gz', { path: p })));
      const winners = results.flatMap((r, i) => (r.created ? [i] : []));
      expect(winners).to.have.length(1);
      for (const r of results) if (!r.created) expect(r.reason).to.equal('exists');
      expect(await readAll(store, 'race-1.0.tar.gz')).to.equal(['one', 'two', 'three', 'four'][winners[0]]);
    });

    it('put replaces what is there', async function () {
      await h.addExternally('a-1.0.tar.gz', 'old');
      const e = await store.put('a-1.0.tar.gz', { path: await h.staged('newer') });
      expect(e).to.include({ key: 'a-1.0.tar.gz', size: 5 });
      expect(await readAll(store, 'a-1.0.tar.gz')).to.equal('newer');
      expect((await listAll(store)).map((x) => x.key)).to.deep.equal(['a-1.0.tar.gz']);
    });

    it('remove: gone from list, stat and open; false for a missing key', async function () {
      await h.addExternally('sub/a-1.0.tar.gz', 'abc');
      expect(await store.remove('sub/a-1.0.tar.gz')).to.equal(true);
      expect(await store.stat('sub/a-1.0.tar.gz')).to.equal(null);
      expect(await store.open('sub/a-1.0.tar.gz')).to.equal(null);
      expect(await listAll(store)).to.deep.equal([]);
      expect(await store.remove('sub/a-1.0.tar.gz')).to.equal(false);
    });

    it('localFile: a local path with the bytes', async function () {
      await h.addExternally('sub/a-1.0.tar.gz', 'local bytes');
      const lf = await store.localFile('sub/a-1.0.tar.gz');
      try {
        expect(await fsp.readFile(lf.path, 'utf8')).to.equal('local bytes');
      } finally {
        await lf.release();
      }
    });

    for (const bad of ['../escape-1.0.tar.gz', '/etc/passwd', 'sub/../../x.tar.gz', './a.tar.gz', '.hidden.tar.gz', 'sub/.hidden/a.tar.gz', 'a//b.tar.gz', 'sub/', '', 'a\\b.tar.gz', 'a\u0000b.tar.gz']) {
      it(`rejects the key ${JSON.stringify(bad)} everywhere`, async function () {
        const src = await h.staged('x');
        const calls: (() => Promise<unknown>)[] = [
          () => store.stat(bad),
          () => store.open(bad),
          () => store.putIfAbsent(bad, { path: src }),
          () => store.put(bad, { path: src }),
          () => store.remove(bad),
          () => store.localFile(bad),
        ];
        for (const call of calls) {
          const err = await call().then(
            () => null,
            (e: unknown) => e,
          );
          expect(err, `${call.toString()}`).to.be.instanceOf(InvalidKeyError);
        }
      });
    }

    it('watch (where supported) reports a new file, then its removal', async function () {
      if (!store.watch) this.skip();
      const events: StoreEvent[] = [];
      const w = store.watch((e) => events.push(e));
      try {
        await w.ready;
        await h.addExternally('sub2/w-1.0.tar.gz', 'watched');
        await h.addExternally('w-2.0.tar.gz', 'watched too');
        const seen = async (pred: (e: StoreEvent) => boolean) => {
          for (let i = 0; i < 100 && !events.some(pred); i++) await new Promise((r) => setTimeout(r, 50));
          return events.some(pred);
        };
        expect(await seen((e) => e.type === 'file' && e.key === 'w-2.0.tar.gz' && e.entry?.size === 11)).to.equal(true);
        // A new directory is reported as such (the caller lists it) or with its files.
        expect(await seen((e) => (e.type === 'dir-added' && e.dirKey === 'sub2') || (e.type === 'file' && e.key === 'sub2/w-1.0.tar.gz'))).to.equal(true);
        await store.remove('w-2.0.tar.gz');
        expect(await seen((e) => e.type === 'file' && e.key === 'w-2.0.tar.gz' && e.entry === null)).to.equal(true);
      } finally {
        w.close();
      }
    });
  });
}

storeContract('FsStore', async () => {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-store-'));
  const root = path.join(base, 'root');
  const staging = path.join(base, 'staging');
  await fsp.mkdir(root);
  await fsp.mkdir(staging);
  const store = new FsStore(root, pino({ level: 'silent' }));
  let n = 0;
  return {
    store,
    async addExternally(key, bytes) {
      const abs = path.join(root, ...key.split('/'));
      await fsp.mkdir(path.dirname(abs), { recursive: true });
      await fsp.writeFile(abs, bytes);
    },
    async staged(bytes) {
      // In the store's staging directory (as the uploader does), as a dotfile: never listed.
      const p = path.join(store.stagingDir, `.staged-${n++}`);
      await fsp.writeFile(p, bytes);
      return p;
    },
    cleanup: () => fsp.rm(base, { recursive: true, force: true }),
  };
});

describe('FsStore specifics', function () {
  let base: string;
  beforeEach(async () => {
    base = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-fsstore-'));
  });
  afterEach(async () => fsp.rm(base, { recursive: true, force: true }));

  it('never follows a symbolic link: not listed, not opened, and a directory reached through one is no file', async function () {
    const root = path.join(base, 'root');
    const outside = path.join(base, 'outside');
    await fsp.mkdir(root);
    await fsp.mkdir(outside);
    await fsp.writeFile(path.join(outside, 'secret-1.0.tar.gz'), 'secret');
    await fsp.symlink(path.join(outside, 'secret-1.0.tar.gz'), path.join(root, 'link-1.0.tar.gz'));
    await fsp.symlink(outside, path.join(root, 'linkdir'));
    const store = new FsStore(root, pino({ level: 'silent' }));
    expect(await listAll(store)).to.deep.equal([]);
    expect(await store.open('link-1.0.tar.gz')).to.equal(null);
    expect(await store.stat('link-1.0.tar.gz')).to.equal(null);
    expect(await store.stat('linkdir/secret-1.0.tar.gz')).to.equal(null);
  });

  it('a directory of thousands of files (stat\'ed off the main thread, in slices) lists exactly its regular files, each with its own size, mtime and identity', async function () {
    this.timeout(60_000);
    const root = path.join(base, 'root');
    await fsp.mkdir(path.join(root, 'sub'), { recursive: true });
    await fsp.writeFile(path.join(base, 'outside-1.0.tar.gz'), 'outside');
    const names: string[] = [];
    for (let i = 0; i < 9000; i++) names.push(`p${i}-1.0.tar.gz`);
    for (let i = 0; i < names.length; i += 500) await Promise.all(names.slice(i, i + 500).map((n, j) => fsp.writeFile(path.join(root, n), 'x'.repeat((i + j) % 97))));
    await fsp.symlink(path.join(base, 'outside-1.0.tar.gz'), path.join(root, 'link-1.0.tar.gz'));
    await fsp.mkdir(path.join(root, 'adir-1.0.tar.gz'));
    await fsp.writeFile(path.join(root, '.hidden-1.0.tar.gz'), 'h');
    await fsp.writeFile(path.join(root, 'sub', 'q-1.0.tar.gz'), 'q');
    const listed = await listAll(new FsStore(root, pino({ level: 'silent' })));
    const expected = [...names, 'sub/q-1.0.tar.gz'].sort();
    expect(listed.map((e) => e.key)).to.deep.equal(expected);
    for (const e of listed.filter((_, i) => i % 97 === 0 || i === listed.length - 1)) {
      const st = await fsp.lstat(path.join(root, e.key));
      expect(e, e.key).to.deep.equal({ key: e.key, size: st.size, mtimeMs: st.mtimeMs, identity: { dev: st.dev, ino: st.ino, ctimeMs: st.ctimeMs } });
    }
  });

  it('put-if-absent from a staging file outside the root', async function () {
    const root = path.join(base, 'root');
    await fsp.mkdir(root);
    const store = new FsStore(root, pino({ level: 'silent' }));
    const src = path.join(base, 'src.tmp');
    await fsp.writeFile(src, 'payload');
    const r = await store.putIfAbsent('p-1.0.tar.gz', { path: src });
    expect(r.created).to.equal(true);
    expect(await fsp.readFile(path.join(root, 'p-1.0.tar.gz'), 'utf8')).to.equal('payload');
    expect((await store.putIfAbsent('p-1.0.tar.gz', { path: src })).created).to.equal(false);
  });
});
