// What users see of the digest cache across restarts (issue 13): whatever state the cache file
// is in (damaged, truncated, of the older journal format, written for another root), the
// /simple/ pages list every file with its real sha256. The caches below are made to match the
// files' stamps but hold WRONG digests, so a cache that were trusted would show on the page;
// the first test checks that such a cache is indeed trusted when nothing is wrong with it.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { buildWheel, type Wheel } from '../bench/soak.js';
import { cacheFileFor, FileDigestCache } from '../lib/catalog/cache.js';
import { startServer, type RunningServer } from '../lib/server.js';
import { makeConfig } from './helpers/config.js';
import { JSON_V1, type ProjectJson } from './helpers/http.js';

const WRONG = 'f'.repeat(64);

describe('digest cache across restarts: pages never show a digest the cache got wrong', function () {
  this.timeout(60_000);
  let work: string;
  let root: string;
  let wheels: Wheel[];
  const running: RunningServer[] = [];

  beforeEach(async () => {
    work = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-cache-fallback-'));
    root = path.join(work, 'root');
    await fsp.mkdir(root);
    wheels = [buildWheel('cache-demo', '1.0', randomBytes(3000)), buildWheel('cache-demo', '2.0', randomBytes(5000)), buildWheel('cache-other', '0.1', randomBytes(1000))];
    for (const w of wheels) await fsp.writeFile(path.join(root, w.filename), Buffer.concat(w.parts));
  });

  afterEach(async () => {
    for (const s of running.splice(0)) await s.close();
    await fsp.rm(work, { recursive: true, force: true });
  });

  /** Start on `dir` (in-root cache unless cacheDir), wait until every file is hashed, read the pages, stop. */
  async function served(dir = root, cacheDir: string | null = null): Promise<Map<string, string | undefined>> {
    const srv = await startServer(makeConfig({ roots: [dir], cacheDir }), pino({ level: 'silent' }));
    running.push(srv);
    await srv.loaded;
    await srv.indexer.whenIdle();
    const out = new Map<string, string | undefined>();
    for (const project of ['cache-demo', 'cache-other']) {
      const res = await fetch(`${srv.url}/simple/${project}/`, { headers: { accept: JSON_V1 } });
      expect(res.status).to.equal(200);
      for (const f of ((await res.json()) as ProjectJson).files) out.set(f.filename, f.hashes.sha256);
    }
    await srv.close();
    running.splice(running.indexOf(srv), 1);
    return out;
  }

  const truth = () => new Map(wheels.map((w) => [w.filename, w.sha256]));

  /** A cache for `dir`'s files as they are on disk (matching stamps), with wrong digests. */
  async function wrongCache(file: string, scope: string, dir = root): Promise<void> {
    await fsp.rm(file, { force: true });
    const c = new FileDigestCache(file, { scope });
    await c.load();
    for (const w of wheels) {
      const st = await fsp.stat(path.join(dir, w.filename));
      c.set(w.filename, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs, sha256: WRONG, metadata: null });
    }
    await c.flush();
  }

  it('trusts an intact cache of this root (the stamps below match: only the checks refuse them)', async () => {
    expect(await served()).to.deep.equal(truth());
    await wrongCache(cacheFileFor(root, null), root);
    const seen = await served();
    expect([...seen.values()]).to.deep.equal(wheels.map(() => WRONG));
  });

  it('a damaged record: the file is rehashed', async () => {
    const file = cacheFileFor(root, null);
    await wrongCache(file, root);
    const bytes = await fsp.readFile(file);
    // Damage the first record's stored digest itself (WRONG -> another wrong digest).
    const at = bytes.indexOf(Buffer.from(WRONG, 'hex'));
    expect(at).to.be.greaterThan(0);
    bytes[at + 5] ^= 0x10;
    await fsp.writeFile(file, bytes);
    const seen = await served();
    expect(seen.get(wheels[0].filename)).to.equal(wheels[0].sha256);
    for (const [name, sha] of seen) expect([WRONG, truth().get(name)], name).to.include(sha);
  });

  it('a truncated cache: whole records before the cut are kept, the cut one is not', async () => {
    const file = cacheFileFor(root, null);
    await wrongCache(file, root);
    const bytes = await fsp.readFile(file);
    const lastDigest = bytes.lastIndexOf(Buffer.from(WRONG, 'hex'));
    await fsp.writeFile(file, bytes.subarray(0, lastDigest + 10));
    const seen = await served();
    expect(seen.get(wheels[2].filename), 'the cut record').to.equal(wheels[2].sha256);
    expect(seen.size).to.equal(3);
  });

  it('a journal of the older format (3) is not trusted, even with matching stamps', async () => {
    const file = cacheFileFor(root, null);
    const lines = ['pypi-lite-cache 3'];
    for (const w of wheels) {
      const st = await fsp.stat(path.join(root, w.filename));
      lines.push(['S', w.filename, st.size, st.mtimeMs, st.ino, st.ctimeMs, WRONG, '', '', 'n', '', '', '', '', '', '', ''].join('\t'));
    }
    await fsp.writeFile(file, `${lines.join('\n')}\n`);
    expect(await served()).to.deep.equal(truth());
    expect((await fsp.readFile(file)).subarray(0, 17).toString()).to.equal('pypi-lite-cache 4');
  });

  it('a cache dir copied from another root is not trusted', async () => {
    const cacheDir = path.join(work, 'cache');
    // What a copy of another root's cache dir holds, under the name this root's cache has.
    await wrongCache(cacheFileFor(root, cacheDir), path.join(work, 'elsewhere'));
    expect(await served(root, cacheDir)).to.deep.equal(truth());
  });

  it('a root moved with its in-root cache is rehashed, not trusted', async () => {
    await wrongCache(cacheFileFor(root, null), root);
    const moved = path.join(work, 'moved');
    await fsp.rename(root, moved);
    expect(await served(moved)).to.deep.equal(truth());
  });
});
