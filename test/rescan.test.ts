// Rescans (issue 9, items 8 and 14): the periodic full rescan that catches what the file-system
// watcher cannot see (network file systems, inotify limits), --poll mode without any watcher,
// and the "unchanged" test (size, mtime, inode, ctime) across a restart with the digest cache.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { buildWheel, type Wheel } from '../bench/soak.js';
import { JSON_V1, request, sleep, type ProjectJson } from './helpers/http.js';
import { spawnServer, tempDir, waitHealthy, type Spawned } from './helpers/server.js';

/** filename -> sha256 on a project's JSON page (empty when the project does not exist). */
async function listing(url: string, project: string): Promise<Map<string, string | undefined>> {
  const res = await fetch(`${url}/simple/${project}/`, { headers: { accept: JSON_V1 } });
  if (res.status === 404) {
    await res.arrayBuffer();
    return new Map();
  }
  expect(res.status).to.equal(200);
  const page = (await res.json()) as ProjectJson;
  return new Map(page.files.map((f) => [f.filename, f.hashes.sha256]));
}

/** Poll until check() holds; fail after `ms`. Returns the time it took. */
async function within(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await check()) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`${what}: not seen within ${ms} ms`);
    await sleep(50);
  }
}

const write = (file: string, w: Wheel) => fsp.writeFile(file, Buffer.concat(w.parts));

/** A whole-second mtime, which fs.utimes can put back exactly (a Date loses the sub-ms part). */
const T = 1_700_000_000;

describe('rescans (real server)', function () {
  this.timeout(60_000);
  const servers: Spawned[] = [];
  const dirs: string[] = [];

  after(async () => {
    for (const s of servers) await s.stop('SIGKILL');
    for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
  });

  async function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Spawned> {
    const s = await spawnServer(['--disable-fallback', ...args], { env });
    servers.push(s);
    await waitHealthy(s.url, { idle: true });
    return s;
  }

  describe('--poll --poll-interval 1: no file-system watcher, a rescan every second', () => {
    let root: string;
    let srv: Spawned;
    const base = buildWheel('poll-demo', '1.0', randomBytes(2048));

    before(async () => {
      root = await tempDir('pypi-lite-poll-');
      dirs.push(root);
      await fsp.mkdir(path.join(root, 'sub'));
      await write(path.join(root, base.filename), base);
      await fsp.utimes(path.join(root, base.filename), T, T);
      srv = await start(['--poll', '--poll-interval', '1', root]);
      expect((await listing(srv.url, 'poll-demo')).get(base.filename)).to.equal(base.sha256);
    });

    it('logs that it polls instead of watching', () => {
      expect(srv.logs().some((l) => l.msg === 'polling the package directories (no file-system watcher)' && l.every === 1)).to.equal(true);
    });

    it('lists an added file (also in a new directory) and drops a removed one within the interval', async () => {
      const added = buildWheel('poll-demo', '2.0');
      const nested = buildWheel('poll-demo', '3.0');
      await write(path.join(root, added.filename), added);
      await fsp.mkdir(path.join(root, 'sub', 'deeper'));
      await write(path.join(root, 'sub', 'deeper', nested.filename), nested);
      await within('added files listed', 3_000, async () => {
        const l = await listing(srv.url, 'poll-demo');
        return l.get(added.filename) === added.sha256 && l.get(nested.filename) === nested.sha256;
      });
      await fsp.rm(path.join(root, added.filename));
      await fsp.rm(path.join(root, 'sub', 'deeper'), { recursive: true });
      await within('removed files dropped', 3_000, async () => {
        const l = await listing(srv.url, 'poll-demo');
        return !l.has(added.filename) && !l.has(nested.filename) && l.has(base.filename);
      });
      expect((await request(srv.url, `/packages/${added.filename}`)).status).to.equal(404);
    });

    it('sees bytes changed with the same size and mtime, and does not rehash unchanged files', async () => {
      const abs = path.join(root, base.filename);
      const before = await fsp.stat(abs);
      const changed = buildWheel('poll-demo', '1.0', randomBytes(2048));
      expect(changed.size).to.equal(base.size);
      await write(abs, changed);
      await fsp.utimes(abs, T, T);
      const after = await fsp.stat(abs);
      expect([after.size, after.mtimeMs]).to.deep.equal([before.size, before.mtimeMs]);
      await within('new sha256 listed', 3_000, async () => (await listing(srv.url, 'poll-demo')).get(base.filename) === changed.sha256);
      const dl = await request(srv.url, `/packages/${base.filename}`);
      expect(dl.headers.etag).to.equal(`"${changed.sha256}"`);
      expect(dl.body.equals(Buffer.concat(changed.parts))).to.equal(true);
      // Several rescans later, an unchanged file is neither re-reported nor rehashed.
      const reported = () => srv.logs().filter((l) => l.file === base.filename).length;
      const n = reported();
      await sleep(2_500);
      expect(reported(), 'log lines about the unchanged file').to.equal(n);
      const health = (await (await fetch(`${srv.url}/health`)).json()) as { hashing: number };
      expect(health.hashing).to.equal(0);
    });
  });

  it('PYPI_LITE_POLL=1 turns polling on, PYPI_LITE_POLL=0 leaves the watcher on', async () => {
    const root = await tempDir('pypi-lite-pollenv-');
    dirs.push(root);
    const on = await start([root], { PYPI_LITE_POLL: '1', PYPI_LITE_POLL_INTERVAL: '2' });
    expect(on.logs().some((l) => l.msg === 'polling the package directories (no file-system watcher)' && l.every === 2)).to.equal(true);
    await on.stop();
    const off = await start([root], { PYPI_LITE_POLL: '0' });
    expect(off.logs().some((l) => String(l.msg).startsWith('polling'))).to.equal(false);
  });

  describe('out of inotify watches (simulated with PYPI_LITE_TEST_MAX_WATCHES=1)', () => {
    let root: string;
    let srv: Spawned;

    before(async () => {
      root = await tempDir('pypi-lite-nowatch-');
      dirs.push(root);
      await fsp.mkdir(path.join(root, 'unwatched'));
      srv = await start(['--rescan-interval', '1', root], { PYPI_LITE_TEST_MAX_WATCHES: '1' });
    });

    it('warns at start-up, with the fix', async () => {
      await within('warning logged', 3_000, () => srv.output().includes('out of inotify watches'));
      const warning = srv.logs().find((l) => String(l.msg).includes('out of inotify watches'));
      expect(warning?.level).to.equal(40);
      expect(warning?.dir).to.equal(path.join(root, 'unwatched'));
      expect(String(warning?.msg)).to.include('sudo sysctl fs.inotify.max_user_watches=');
      expect(String(warning?.msg)).to.include('--poll');
      expect(String(warning?.msg)).to.include('periodic rescan (every 1 s)');
      expect(srv.logs().filter((l) => String(l.msg).includes('out of inotify watches')), 'one warning, not one per rescan').to.have.length(1);
    });

    it('a rescan picks up a file the watcher missed, and its removal', async () => {
      const w = buildWheel('missed-demo', '1.0');
      const abs = path.join(root, 'unwatched', w.filename);
      await write(abs, w);
      await within('missed file listed', 4_000, async () => (await listing(srv.url, 'missed-demo')).get(w.filename) === w.sha256);
      expect(srv.logs().some((l) => l.msg === 'file added (found by rescan)' && l.file === `unwatched/${w.filename}`), 'found by the rescan').to.equal(true);
      await fsp.rm(abs);
      await within('missed removal seen', 4_000, async () => !(await listing(srv.url, 'missed-demo')).has(w.filename));
      // Every rescan tried to watch the directory again, quietly.
      expect(srv.logs().filter((l) => String(l.msg).includes('out of inotify watches'))).to.have.length(1);
    });
  });

  describe('across a restart (the digest cache)', () => {
    it('rehashes files whose bytes changed with the same size and mtime while the server was down', async () => {
      const work = await tempDir('pypi-lite-restart-');
      dirs.push(work);
      const root = path.join(work, 'root');
      const cacheDir = path.join(work, 'cache');
      await fsp.mkdir(root);
      const inPlace = buildWheel('restart-demo', '1.0', randomBytes(4096));
      const renamed = buildWheel('restart-demo', '2.0', randomBytes(4096));
      const kept = buildWheel('restart-demo', '3.0', randomBytes(4096));
      for (const w of [inPlace, renamed, kept]) {
        await write(path.join(root, w.filename), w);
        await fsp.utimes(path.join(root, w.filename), T, T);
      }
      const args = ['--cache-dir', cacheDir, root];

      const first = await start(args);
      const l1 = await listing(first.url, 'restart-demo');
      expect([l1.get(inPlace.filename), l1.get(renamed.filename), l1.get(kept.filename)]).to.deep.equal([inPlace.sha256, renamed.sha256, kept.sha256]);
      expect(await first.stop('SIGTERM')).to.equal(0);

      // While down: new bytes of the same size, the mtime put back.
      const inPlace2 = buildWheel('restart-demo', '1.0', randomBytes(4096));
      const renamed2 = buildWheel('restart-demo', '2.0', randomBytes(4096));
      const a = path.join(root, inPlace.filename);
      const stA = await fsp.stat(a);
      await write(a, inPlace2);
      await fsp.utimes(a, T, T);
      const b = path.join(root, renamed.filename);
      const stB = await fsp.stat(b);
      const tmp = path.join(root, '.new.tmp');
      await write(tmp, renamed2);
      await fsp.utimes(tmp, T, T);
      await fsp.rename(tmp, b);
      for (const [file, st] of [[a, stA], [b, stB]] as const) {
        const now = await fsp.stat(file);
        expect([now.size, now.mtimeMs]).to.deep.equal([st.size, st.mtimeMs]);
      }

      const second = await start(args);
      const l2 = await listing(second.url, 'restart-demo');
      expect(l2.get(inPlace.filename), 'rewritten in place').to.equal(inPlace2.sha256);
      expect(l2.get(renamed.filename), 'renamed over').to.equal(renamed2.sha256);
      expect(l2.get(kept.filename), 'unchanged').to.equal(kept.sha256);
      for (const [w, bytes] of [[inPlace2, inPlace2], [renamed2, renamed2]] as const) {
        const dl = await request(second.url, `/packages/${w.filename}`);
        expect(dl.headers.etag).to.equal(`"${bytes.sha256}"`);
        expect(dl.body.equals(Buffer.concat(bytes.parts))).to.equal(true);
      }
    });
  });
});
