// The PackageStore contract, written against the interface only: every store implementation
// runs this same suite (FsStore, and S3Store on the Ceph RGW harness: skipped, saying why, where
// the engine is not installed).

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import pino from 'pino';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { FsStore } from '../lib/store/fs-store.js';
import { describeName, isDistFilename } from '../lib/catalog/filename.js';
import { S3Store } from '../lib/store/s3-store.js';
import { createS3Client } from '../lib/store/s3-client.js';
import { startRgwOrSkip, type Rgw } from './helpers/rgw.js';
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
  for await (const batch of store.list(prefix === undefined ? {} : { prefix })) out.push(...batch);
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
      for await (const batch of store.list({ accept: (n) => n.endsWith('.tar.gz') })) keys.push(...batch.map((e) => e.key));
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
      const staged = await h.staged('new bytes');
      const r = await store.putIfAbsent('sub/new-1.0.tar.gz', { path: staged });
      expect(r.created).to.equal(true);
      if (r.created) expect(r.entry).to.include({ key: 'sub/new-1.0.tar.gz', size: 9 });
      // The entry is what the file stays once the uploader has removed its staged file (the
      // indexer compares it with what the watcher and rescans see: a mismatch means a rehash).
      await fsp.rm(staged, { force: true });
      if (r.created) expect(await store.stat('sub/new-1.0.tar.gz')).to.deep.equal(r.entry);
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

/** One engine for every S3 case; each case gets a prefix of its own in one bucket. */
describe('S3Store (Ceph RGW)', function () {
  this.timeout(120_000);
  let rgw: Rgw;
  let s3: S3Client;
  /** The store's own client, built as the server builds it (from the AWS variables). */
  let storeClient: S3Client;
  const savedEnv = { ...process.env };
  let runs = 0;
  before(async function () {
    rgw = await startRgwOrSkip(this);
    s3 = rgw.client();
    await rgw.createBucket('contract');
    Object.assign(process.env, rgw.env);
    storeClient = await createS3Client({ pathStyle: true });
  });
  after(async () => {
    for (const k of Object.keys(rgw?.env ?? {})) if (savedEnv[k] === undefined) delete process.env[k];
    Object.assign(process.env, savedEnv);
    storeClient?.destroy();
    s3?.destroy();
    await rgw?.stop();
  });

  async function makeS3(opts: { pageSize?: number } = {}): Promise<Harness & { store: S3Store; prefix: string; base: string }> {
    const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-s3store-'));
    const prefix = `run-${runs++}/pkgs`;
    const store = new S3Store({
      location: { bucket: 'contract', prefix, id: `s3://contract/${prefix}` },
      client: storeClient,
      stagingDir: base,
      listIntervalMs: 200,
      log: pino({ level: 'silent' }),
      ...opts,
    });
    await store.check();
    let n = 0;
    return {
      store,
      prefix,
      base,
      async addExternally(key, bytes) {
        await s3.send(new PutObjectCommand({ Bucket: 'contract', Key: `${prefix}/${key}`, Body: bytes }));
      },
      async staged(bytes) {
        const p = path.join(store.stagingDir, `.staged-${n++}`);
        await fsp.writeFile(p, bytes);
        return p;
      },
      cleanup: async () => {
        store.close();
        await fsp.rm(base, { recursive: true, force: true });
      },
    };
  }

  storeContract('S3Store', () => makeS3());

  describe('S3Store specifics', function () {
    it('open(etag) and localFile(etag): only the indexed bytes; an object replaced since is refused', async function () {
      const h = await makeS3();
      try {
        await h.addExternally('a-1.0.tar.gz', 'first');
        const first = (await h.store.stat('a-1.0.tar.gz'))!;
        expect(first.etag).to.be.a('string');
        expect(first.identity).to.equal(undefined);
        const opened = (await h.store.open('a-1.0.tar.gz', { etag: first.etag }))!;
        await h.addExternally('a-1.0.tar.gz', 'second!');
        expect(await h.store.open('a-1.0.tar.gz', { etag: first.etag })).to.equal(null);
        // A stream of an object opened before the replacement never returns the new bytes.
        const err = await text(opened.stream()).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(Error);
        const lf = await h.store.localFile('a-1.0.tar.gz', { etag: first.etag });
        const read = await fsp.readFile(lf.path, 'utf8').catch((e: NodeJS.ErrnoException) => e.code);
        await lf.release();
        expect(read).to.equal('ENOENT');
        const now = (await h.store.stat('a-1.0.tar.gz'))!;
        const lf2 = await h.store.localFile('a-1.0.tar.gz', { etag: now.etag });
        expect(await fsp.readFile(lf2.path, 'utf8')).to.equal('second!');
        await lf2.release();
        expect(await fsp.readdir(h.base)).to.deep.equal([]);
      } finally {
        await h.cleanup();
      }
    });

    it('a watch started just before a full listing takes that listing as its baseline (a warm start lists once), and reports changes after it', async function () {
      const h = await makeS3();
      let lists = 0;
      storeClient.middlewareStack.add(
        (next, context) => async (args) => {
          // Listings of the packages (the feed's own listings of .pypi-lite/ are the replicas' business).
          if (context.commandName === 'ListObjectsV2Command' && !((args.input as { Prefix?: string }).Prefix ?? '').includes('.pypi-lite/')) lists++;
          return next(args);
        },
        { step: 'initialize', name: 'countLists' },
      );
      const events: StoreEvent[] = [];
      let w: { ready: Promise<void>; close(): void } | null = null;
      try {
        await h.addExternally('a-1.0.tar.gz', 'aa');
        w = h.store.watch((e) => events.push(e));
        // As the indexer does: watch, then the scan's full listing.
        expect((await listAll(h.store)).map((e) => e.key)).to.deep.equal(['a-1.0.tar.gz']);
        await w.ready;
        expect(lists, 'one listing for the scan and the watch').to.equal(1);
        await h.addExternally('b-1.0.tar.gz', 'bbb');
        for (let i = 0; i < 100 && !events.some((e) => e.type === 'file' && e.key === 'b-1.0.tar.gz'); i++) await new Promise((r) => setTimeout(r, 50));
        expect(events.filter((e) => e.type === 'file').map((e) => (e.type === 'file' ? e.key : ''))).to.deep.equal(['b-1.0.tar.gz']);
      } finally {
        w?.close();
        storeClient.middlewareStack.remove('countLists');
        await h.cleanup();
      }
    });

    it('list() jumps over the reserved prefix .pypi-lite/ (and keeps every other key), page by page', async function () {
      const h = await makeS3({ pageSize: 2 });
      try {
        await h.addExternally('-early-1.0.tar.gz', 'x'); // sorts before the reserved prefix
        for (let i = 0; i < 7; i++) await h.addExternally(`.pypi-lite/feed/${i}`, 'journal');
        await h.addExternally('a-1.0.tar.gz', 'aa');
        await h.addExternally('z/b-1.0.tar.gz', 'bbb');
        const keys = (await listAll(h.store)).map((e) => e.key);
        expect(keys).to.deep.equal(['-early-1.0.tar.gz', 'a-1.0.tar.gz', 'z/b-1.0.tar.gz']);
      } finally {
        await h.cleanup();
      }
    });
  });
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
    // What the caller does not accept is left out there too, in the large directory and below it.
    const some: string[] = [];
    for await (const batch of new FsStore(root, pino({ level: 'silent' })).list({ accept: (n) => n.startsWith('p7') || n.startsWith('q') })) some.push(...batch.map((e) => e.key));
    expect(some.sort()).to.deep.equal(expected.filter((k) => k.startsWith('p7') || k.startsWith('sub/q')));
  });

  it('the event loop runs between the slices of a large directory, however far ahead the listing worker is (the server answers during a warm start)', async function () {
    this.timeout(60_000);
    const root = path.join(base, 'root');
    await fsp.mkdir(root);
    const names: string[] = [];
    for (let i = 0; i < 14000; i++) names.push(`e${i}-1.0.tar.gz`);
    for (let i = 0; i < names.length; i += 500) await Promise.all(names.slice(i, i + 500).map((n) => fsp.writeFile(path.join(root, n), 'e')));
    // Count the turns of the event loop (one setImmediate per turn, as a request would wait).
    let turns = 0;
    let spinning = true;
    const spin = (): void => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    const turnsSeen: number[] = [];
    let files = 0;
    try {
      for await (const batch of new FsStore(root, pino({ level: 'silent' })).list()) {
        turnsSeen.push(turns);
        files += batch.length;
        // Index slowly (as a warm start at 1,000,000 files does): the worker gets ahead.
        const until = performance.now() + 25;
        while (performance.now() < until);
      }
    } finally {
      spinning = false;
    }
    expect(files).to.equal(names.length);
    expect(turnsSeen.length).to.be.greaterThan(3);
    // Between any two batches the loop turned at least once.
    const stalls = turnsSeen.slice(1).filter((t, i) => t === turnsSeen[i]).length;
    expect(stalls, `batches handed over with no turn of the event loop between them (turns: ${turnsSeen.join(' ')})`).to.equal(0);
  });

  for (const tableSize of ['', '50']) {
    it(`a large directory's names are described by the caller's module in the listing worker, each entry with its own description${tableSize ? ' (the strings table emptied at every slice)' : ''}`, async function () {
      this.timeout(60_000);
      const root = path.join(base, 'root');
      await fsp.mkdir(path.join(root, 'sub'), { recursive: true });
      const names: string[] = [];
      // Wheels of 300 projects in 17 versions, sdists keeping a dotted spelling (shown until the
      // metadata is read), and names with a distribution extension that are no distribution's.
      for (let i = 0; i < 5100; i++) names.push(`pkg_${i % 300}-1.${Math.floor(i / 300)}-py3-none-any.whl`);
      for (let i = 0; i < 40; i++) names.push(`Foo.Bar${i}-2.${i % 3}.tar.gz`);
      names.push('not-a-version-x.whl', 'nodigits.tar.gz');
      for (let i = 0; i < names.length; i += 500) await Promise.all(names.slice(i, i + 500).map((n) => fsp.writeFile(path.join(root, n), 'x')));
      await fsp.writeFile(path.join(root, 'README.txt'), 'not listed');
      await fsp.writeFile(path.join(root, 'sub', 'Small.Dir-1.0.tar.gz'), 'listed on the main thread');
      const describe = new URL('../lib/catalog/filename.js', import.meta.url).href;
      if (tableSize) process.env.PYPI_LITE_TEST_LIST_STRINGS = tableSize;
      const listed: StoreEntry[] = [];
      try {
        for await (const batch of new FsStore(root, pino({ level: 'silent' })).list({ accept: isDistFilename, describe })) listed.push(...batch);
      } finally {
        delete process.env.PYPI_LITE_TEST_LIST_STRINGS;
      }
      expect(listed.map((e) => e.key).sort()).to.deep.equal([...names, 'sub/Small.Dir-1.0.tar.gz'].sort());
      for (const e of listed) {
        // (A small directory is listed on the main thread: its names are not described.)
        if (e.key.startsWith('sub/')) expect(e.described, e.key).to.equal(undefined);
        else expect(e.described, e.key).to.deep.equal(describeName(e.key) ?? undefined);
      }
      expect(listed.find((e) => e.key === 'Foo.Bar7-2.1.tar.gz')?.described).to.deep.equal(['foo-bar7', '2.1', 'Foo.Bar7']);
      expect(listed.find((e) => e.key === 'pkg_12-1.16-py3-none-any.whl')?.described).to.deep.equal(['pkg-12', '1.16', 'pkg-12']);
      expect(listed.filter((e) => e.described === undefined).map((e) => e.key).sort()).to.deep.equal(['nodigits.tar.gz', 'not-a-version-x.whl', 'sub/Small.Dir-1.0.tar.gz']);
    });
  }

  for (const exitAfter of ['0', '1']) {
    it(`a large directory is still listed whole when its listing worker dies (after ${exitAfter} slice${exitAfter === '1' ? '' : 's'}): the main thread lists it`, async function () {
      this.timeout(60_000);
      const root = path.join(base, 'root');
      await fsp.mkdir(path.join(root, 'sub'), { recursive: true });
      const names: string[] = [];
      for (let i = 0; i < 6000; i++) names.push(`w${i}-1.0.tar.gz`);
      for (let i = 0; i < names.length; i += 500) await Promise.all(names.slice(i, i + 500).map((n) => fsp.writeFile(path.join(root, n), n)));
      await fsp.writeFile(path.join(root, 'sub', 'q-1.0.tar.gz'), 'q');
      process.env.PYPI_LITE_TEST_LIST_WORKER_EXIT = exitAfter;
      let listed: StoreEntry[];
      try {
        listed = await listAll(new FsStore(root, pino({ level: 'silent' })));
      } finally {
        delete process.env.PYPI_LITE_TEST_LIST_WORKER_EXIT;
      }
      // (Files the worker sent before it died may come twice: the index takes a file once.)
      const keys = [...new Set(listed.map((e) => e.key))].sort();
      expect(keys).to.deep.equal([...names, 'sub/q-1.0.tar.gz'].sort());
      const one = listed.find((e) => e.key === 'w77-1.0.tar.gz')!;
      expect(one.size).to.equal(Buffer.byteLength('w77-1.0.tar.gz'));
    });
  }

  it('put-if-absent from a staging file outside the root', async function () {
    const root = path.join(base, 'root');
    await fsp.mkdir(root);
    const store = new FsStore(root, pino({ level: 'silent' }));
    const src = path.join(base, 'src.tmp');
    await fsp.writeFile(src, 'payload');
    const r = await store.putIfAbsent('p-1.0.tar.gz', { path: src });
    expect(r.created).to.equal(true);
    expect(await fsp.readFile(path.join(root, 'p-1.0.tar.gz'), 'utf8')).to.equal('payload');
    // The staged name is consumed (linked into place, then removed): stage the second one anew.
    const again = path.join(base, 'src2.tmp');
    await fsp.writeFile(again, 'other');
    expect((await store.putIfAbsent('p-1.0.tar.gz', { path: again })).created).to.equal(false);
    expect(await fsp.readFile(path.join(root, 'p-1.0.tar.gz'), 'utf8')).to.equal('payload');
  });
});
