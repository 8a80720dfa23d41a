import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { EXAMPLE, spawnServer, tempDir, waitHealthy, type Spawned } from './helpers/server.js';
import { JSON_V1, request, sha256, sleep, type ProjectJson } from './helpers/http.js';
import { buildWheel } from '../bench/soak.js';

/** How long after a change completes the change must be visible. */
const DEADLINE_MS = 1_000;

const DEMO_WHEEL_1 = 'pypi_lite_demo-1.0.0-py3-none-any.whl';
const DEMO_WHEEL_11 = 'pypi_lite_demo-1.1.0-py3-none-any.whl';
const DEMO_WHEEL_2 = 'pypi_lite_demo-2.0.0-py3-none-any.whl';
const DEMO_SDIST_2 = 'pypi_lite_demo-2.0.0.tar.gz';
const FANCY_WHEEL = 'fancy_mixed_name-0.3.1-py3-none-any.whl';
const FANCY_SDIST = 'fancy_mixed_name-0.3.1.tar.gz';
const SDIST_ONLY = 'sdist-only-tool-0.9.tar.gz';

interface Listed {
  filename: string;
  path: string;
  sha256: string | undefined;
}

describe('watching the package directory (real server)', function () {
  this.timeout(60_000);
  let root: string;
  let srv: Spawned;

  const example = (name: string) => fsp.readFile(path.join(EXAMPLE, name));

  /** Files on a project's JSON page ([] when the project does not exist). */
  async function listed(project: string): Promise<Listed[]> {
    const pageUrl = `${srv.url}/simple/${project}/`;
    const res = await fetch(pageUrl, { headers: { accept: JSON_V1 } });
    if (res.status === 404) {
      await res.arrayBuffer();
      return [];
    }
    expect(res.status, `GET ${pageUrl}`).to.equal(200);
    const j = (await res.json()) as ProjectJson;
    return j.files.map((f) => ({ filename: f.filename, path: decodeURIComponent(new URL(f.url, pageUrl).pathname), sha256: f.hashes.sha256 }));
  }

  /** Every file on every project page. */
  async function everything(): Promise<Listed[]> {
    const res = await fetch(`${srv.url}/simple/`, { headers: { accept: JSON_V1 } });
    const list = (await res.json()) as { projects: { name: string }[] };
    const out: Listed[] = [];
    for (const p of list.projects) out.push(...(await listed(p.name.replace(/[-_.]+/g, '-').toLowerCase())));
    return out;
  }

  /** Poll until check() is true; fail if that takes longer than DEADLINE_MS from `since`. */
  async function within(what: string, since: number, check: () => Promise<boolean>): Promise<number> {
    for (;;) {
      if (await check()) return Date.now() - since;
      if (Date.now() - since > DEADLINE_MS) throw new Error(`${what}: not seen within ${DEADLINE_MS} ms`);
      await sleep(20);
    }
  }

  before(async () => {
    root = await tempDir('pypi-lite-watch-');
    await fsp.writeFile(path.join(root, FANCY_SDIST), await example(FANCY_SDIST));
    // present at start-up: hidden things and files that are not distributions
    await fsp.writeFile(path.join(root, '.hidden_pkg-1.0.tar.gz'), await example(DEMO_SDIST_2));
    await fsp.mkdir(path.join(root, '.dotdir'));
    await fsp.writeFile(path.join(root, '.dotdir', 'pypi_lite_demo-9.0.0-py3-none-any.whl'), await example(DEMO_WHEEL_1));
    await fsp.writeFile(path.join(root, 'README.txt'), 'not a package\n');
    await fsp.writeFile(path.join(root, 'garbage-.whl'), 'not a wheel at all\n');
    srv = await spawnServer(['--disable-fallback', root]);
    await waitHealthy(srv.url, { idle: true });
    expect((await listed('fancy-mixed-name')).map((f) => f.filename)).to.deep.equal([FANCY_SDIST]);
  });

  after(async () => {
    await srv?.stop();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  it('lists a copied-in wheel within 1 s, with the right hash', async () => {
    const bytes = await example(DEMO_WHEEL_1);
    await fsp.copyFile(path.join(EXAMPLE, DEMO_WHEEL_1), path.join(root, DEMO_WHEEL_1));
    const t0 = Date.now();
    await within(`${DEMO_WHEEL_1} listed`, t0, async () => (await listed('pypi-lite-demo')).some((f) => f.filename === DEMO_WHEEL_1));
    const f = (await listed('pypi-lite-demo')).find((x) => x.filename === DEMO_WHEEL_1)!;
    expect(f.sha256).to.equal(sha256(bytes));
    const dl = await request(srv.url, f.path);
    expect(dl.status).to.equal(200);
    expect(dl.body.equals(bytes)).to.equal(true);
  });

  it('drops a removed file within 1 s', async () => {
    await fsp.rm(path.join(root, DEMO_WHEEL_1));
    const t0 = Date.now();
    await within(`${DEMO_WHEEL_1} gone`, t0, async () => !(await listed('pypi-lite-demo')).some((f) => f.filename === DEMO_WHEEL_1));
    expect((await request(srv.url, `/packages/${DEMO_WHEEL_1}`)).status).to.equal(404);
    // the project had no other file: it is gone from the project list too
    const list = (await (await fetch(`${srv.url}/simple/`, { headers: { accept: JSON_V1 } })).json()) as { projects: { name: string }[] };
    expect(list.projects.map((p) => p.name)).not.to.include('pypi-lite-demo');
  });

  it('follows a rename: the old name goes, the new one is listed', async () => {
    const from = DEMO_WHEEL_11;
    const to = 'pypi_lite_demo-1.1.0-1-py3-none-any.whl'; // same wheel with a build tag
    const bytes = await example(from);
    await fsp.writeFile(path.join(root, from), bytes);
    await within(`${from} listed`, Date.now(), async () => (await listed('pypi-lite-demo')).some((f) => f.filename === from));
    await fsp.rename(path.join(root, from), path.join(root, to));
    const t0 = Date.now();
    await within(`rename ${from} -> ${to}`, t0, async () => {
      const names = (await listed('pypi-lite-demo')).map((f) => f.filename);
      return names.includes(to) && !names.includes(from);
    });
    const f = (await listed('pypi-lite-demo')).find((x) => x.filename === to)!;
    expect(f.sha256).to.equal(sha256(bytes));
    expect((await request(srv.url, `/packages/${from}`)).status).to.equal(404);
    expect((await request(srv.url, `/packages/${to}`)).body.equals(bytes)).to.equal(true);
  });

  // Issue 9 item 8: an edit that keeps the size and the mtime (rsync -t, cp -p, tar x, or a
  // tool that restores the mtime) must still be seen: the inode or the ctime changes.
  describe('bytes changed with the same size and mtime', () => {
    const same = (name: string, version: string) => buildWheel(name, version, randomBytes(4096));

    async function served(relPath: string): Promise<{ sha: string | undefined; etag: string | undefined; body: Buffer }> {
      const f = (await listed('same-stamp')).find((x) => x.filename === path.basename(relPath));
      const dl = await request(srv.url, `/packages/${relPath}`);
      return { sha: f?.sha256, etag: dl.headers.etag, body: dl.body };
    }

    for (const how of ['rewritten in place', 'renamed over (new inode)'] as const) {
      it(`lists and serves the new bytes when a file is ${how}`, async () => {
        const version = how === 'rewritten in place' ? '1.0' : '2.0';
        const first = same('same-stamp', version);
        const second = same('same-stamp', version);
        expect(second.size).to.equal(first.size);
        const abs = path.join(root, first.filename);
        await fsp.writeFile(abs, Buffer.concat(first.parts));
        // A whole-second mtime, which fs.utimes can put back exactly.
        await fsp.utimes(abs, 1_700_000_000, 1_700_000_000);
        await within(`${first.filename} listed`, Date.now(), async () => (await served(first.filename)).sha === first.sha256);
        const before = await fsp.stat(abs);
        if (how === 'rewritten in place') {
          await fsp.writeFile(abs, Buffer.concat(second.parts));
        } else {
          const tmp = path.join(root, '.incoming.tmp');
          await fsp.writeFile(tmp, Buffer.concat(second.parts));
          await fsp.utimes(tmp, 1_700_000_000, 1_700_000_000);
          await fsp.rename(tmp, abs);
        }
        await fsp.utimes(abs, 1_700_000_000, 1_700_000_000);
        const after = await fsp.stat(abs);
        expect([after.size, after.mtimeMs], 'size and mtime are the same').to.deep.equal([before.size, before.mtimeMs]);
        const t0 = Date.now();
        await within(`${how}: new sha256 listed`, t0, async () => (await served(first.filename)).sha === second.sha256);
        const now = await served(first.filename);
        expect(now.etag).to.equal(`"${second.sha256}"`);
        expect(now.body.equals(Buffer.concat(second.parts))).to.equal(true);
        await fsp.rm(abs);
      });
    }
  });

  it('never lists a file that is still being written with a wrong hash', async () => {
    // A wheel (a truncated zip cannot be opened) and an sdist whose PKG-INFO comes early (a
    // truncated one still yields its metadata: only the end of the gzip stream tells).
    const targets = [
      { name: DEMO_WHEEL_2, bytes: await example(DEMO_WHEEL_2) },
      { name: SDIST_ONLY, bytes: await example(SDIST_ONLY) },
    ];
    const listedTargets = async () => [...(await listed('pypi-lite-demo')), ...(await listed('sdist-only-tool'))];
    const handles = await Promise.all(targets.map((t) => fsp.open(path.join(root, t.name), 'w')));
    const seenWhileWriting: string[] = [];
    try {
      await Promise.all(targets.map((t, i) => handles[i].write(t.bytes, 0, Math.floor(t.bytes.length / 2))));
      const pauseEnd = Date.now() + 600;
      while (Date.now() < pauseEnd) {
        for (const f of await listedTargets()) {
          const t = targets.find((x) => x.name === f.filename);
          if (!t) continue;
          seenWhileWriting.push(f.filename);
          expect(f.sha256, `${f.filename} listed half-written (hash of a partial file)`).to.equal(sha256(t.bytes));
        }
        await sleep(15);
      }
      await Promise.all(targets.map((t, i) => handles[i].write(t.bytes, Math.floor(t.bytes.length / 2), t.bytes.length - Math.floor(t.bytes.length / 2))));
    } finally {
      await Promise.all(handles.map((h) => h.close()));
    }
    const t0 = Date.now();
    await within('completed files listed with their final hashes', t0, async () => {
      const files = await listedTargets();
      return targets.every((t) => files.find((f) => f.filename === t.name)?.sha256 === sha256(t.bytes));
    });
    for (const t of targets) {
      const dl = await request(srv.url, `/packages/${t.name}`);
      expect(dl.body.equals(t.bytes), t.name).to.equal(true);
    }
    // The files were listed only once they were complete (seenWhileWriting only ever had correct hashes).
    expect(seenWhileWriting.every((n) => targets.some((t) => t.name === n))).to.equal(true);
  });

  it('picks up a new subdirectory and the files in it', async () => {
    await fsp.mkdir(path.join(root, 'newdir', 'deeper'), { recursive: true });
    await fsp.copyFile(path.join(EXAMPLE, FANCY_WHEEL), path.join(root, 'newdir', 'deeper', FANCY_WHEEL));
    const t0 = Date.now();
    await within('file in new subdirectory listed', t0, async () => (await listed('fancy-mixed-name')).some((f) => f.path === `/packages/newdir/deeper/${FANCY_WHEEL}`));
    const dl = await request(srv.url, `/packages/newdir/deeper/${FANCY_WHEEL}`);
    expect(dl.status).to.equal(200);
    expect(dl.body.equals(await example(FANCY_WHEEL))).to.equal(true);
    // a file added later to the (now watched) directory is seen too
    await fsp.copyFile(path.join(EXAMPLE, DEMO_WHEEL_1), path.join(root, 'newdir', DEMO_WHEEL_1));
    const t1 = Date.now();
    await within('second file in the subdirectory listed', t1, async () => (await listed('pypi-lite-demo')).some((f) => f.path === `/packages/newdir/${DEMO_WHEEL_1}`));
  });

  it('drops the files of a removed subdirectory', async () => {
    await fsp.rm(path.join(root, 'newdir'), { recursive: true });
    const t0 = Date.now();
    await within('subdirectory files gone', t0, async () => !(await everything()).some((f) => f.path.startsWith('/packages/newdir/')));
  });

  it('never lists dotfiles or files in dot-directories', async () => {
    await fsp.writeFile(path.join(root, '.late_hidden-1.0.tar.gz'), await example(DEMO_SDIST_2));
    await fsp.mkdir(path.join(root, '.late-dotdir'));
    await fsp.writeFile(path.join(root, '.late-dotdir', 'pypi_lite_demo-8.0.0-py3-none-any.whl'), await example(DEMO_WHEEL_1));
    await fsp.mkdir(path.join(root, 'visible', '.inner'), { recursive: true });
    await fsp.writeFile(path.join(root, 'visible', '.inner', 'pypi_lite_demo-7.0.0-py3-none-any.whl'), await example(DEMO_WHEEL_1));
    await fsp.writeFile(path.join(root, 'visible', FANCY_WHEEL), await example(FANCY_WHEEL));
    // the visible file in the same batch shows the watcher has caught up
    await within('visible file listed', Date.now(), async () => (await listed('fancy-mixed-name')).some((f) => f.path === `/packages/visible/${FANCY_WHEEL}`));
    await sleep(300);
    const all = await everything();
    const paths = all.map((f) => f.path);
    for (const p of paths) expect(p.split('/').some((seg) => seg.startsWith('.')), p).to.equal(false);
    for (const p of ['/packages/.hidden_pkg-1.0.tar.gz', '/packages/.dotdir/pypi_lite_demo-9.0.0-py3-none-any.whl', '/packages/.late_hidden-1.0.tar.gz', '/packages/.late-dotdir/pypi_lite_demo-8.0.0-py3-none-any.whl', '/packages/visible/.inner/pypi_lite_demo-7.0.0-py3-none-any.whl']) {
      expect((await request(srv.url, p)).status, p).to.equal(404);
    }
    const versions = (await (await fetch(`${srv.url}/simple/pypi-lite-demo/`, { headers: { accept: JSON_V1 } })).json()) as ProjectJson;
    expect(versions.versions).not.to.include('7.0.0');
    expect(versions.versions).not.to.include('8.0.0');
    expect(versions.versions).not.to.include('9.0.0');
  });

  it('does not list unparseable files, and warns about a bad distribution name once', async () => {
    // touch the bad file a few times: still one warning
    for (let i = 0; i < 3; i++) {
      await fsp.appendFile(path.join(root, 'garbage-.whl'), `more ${i}\n`);
      await sleep(400);
    }
    await fsp.writeFile(path.join(root, 'notes.txt'), 'hello\n');
    await fsp.writeFile(path.join(root, 'broken-.tar.gz'), 'x');
    await sleep(700);
    await fsp.appendFile(path.join(root, 'broken-.tar.gz'), 'y');
    await sleep(700);
    const names = (await everything()).map((f) => f.filename);
    for (const n of ['README.txt', 'notes.txt', 'garbage-.whl', 'broken-.tar.gz']) {
      expect(names, n).not.to.include(n);
      expect((await request(srv.url, `/packages/${n}`)).status, n).to.equal(404);
    }
    const warnings = (name: string) =>
      srv.logs().filter((l) => typeof l.level === 'number' && l.level === 40 && typeof l.msg === 'string' && new RegExp(`(^|[\\s/])${name.replace(/[.]/g, '\\.')}`).test(l.msg));
    expect(warnings('garbage-.whl'), srv.output().slice(-2000)).to.have.length(1);
    expect(warnings('broken-.tar.gz'), srv.output().slice(-2000)).to.have.length(1);
    // the server is still fine
    expect((await listed('fancy-mixed-name')).length).to.be.greaterThan(0);
  });
});
