// Release integrity of uploads, against the real server: a file is unique by distribution (every
// spelling of its name that pip takes for the same file), one sdist per release holds under
// concurrency, and what is uploaded must be the archive its name says.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { spawnServer, tempDir, waitHealthy, type Spawned } from './helpers/server.js';
import { eventually, multipart, post, pyArchive, sha256, tempUploads, twineFields, type Answer, type ArchiveSpec } from './helpers/upload.js';
import { expectRefused, listed } from './helpers/upload.js';



/** The distribution files in a root (no dotfiles: temp files, cache). */
async function distFiles(root: string): Promise<string[]> {
  return (await fsp.readdir(root)).filter((n) => !n.startsWith('.')).sort();
}

describe('upload integrity: uniqueness by distribution, one sdist per release, archive checks', function () {
  this.timeout(120_000);

  let work: string;
  const servers: Spawned[] = [];

  async function serve(extra: string[] = []): Promise<{ url: string; root: string }> {
    const root = await fsp.mkdtemp(path.join(work, 'root-'));
    const srv = await spawnServer(['-a', '.', '-P', '.', '--disable-fallback', ...extra, root]);
    servers.push(srv);
    await waitHealthy(srv.url);
    return { url: srv.url, root };
  }

  /** Upload `bytes` as `filename` with twine's fields (filetype from the extension, any case). */
  async function send(url: string, name: string, version: string, filename: string, bytes: Buffer): Promise<Answer> {
    const filetype = filename.toLowerCase().endsWith('.whl') ? 'bdist_wheel' : 'sdist';
    const ans = await post(`${url}/`, multipart(twineFields(name, version, filename, bytes, { filetype }), { filename, bytes }));
    expect(ans.status, `never a 5xx: ${ans.status} ${ans.statusText}`).to.be.below(500);
    return ans;
  }

  function archive(filename: string, spec: ArchiveSpec): Promise<Buffer> {
    return pyArchive(work, filename, spec);
  }

  before(async () => {
    work = await tempDir('pypi-lite-integrity-');
  });

  after(async () => {
    for (const s of servers) {
      const code = await s.stop();
      expect(code, s.output()).to.equal(0);
      expect(s.output()).not.to.match(/"level":50|unexpected error/);
    }
    await fsp.rm(work, { recursive: true, force: true });
  });

  describe('"File already exists" applies to every spelling of a file name', () => {
    let url: string;
    let root: string;
    let original: Buffer;
    const WHEEL = 'demo-1.0-py3-none-any.whl';

    before(async () => {
      ({ url, root } = await serve());
      original = await archive(WHEEL, { kind: 'wheel', name: 'demo', version: '1.0' });
      const first = await send(url, 'demo', '1.0', WHEEL, original);
      expect(first.status, first.statusText).to.equal(200);
    });

    /** Whatever was refused: pip still sees (and installs) the first file only. */
    async function unchanged(): Promise<void> {
      expect(await listed(url, 'demo')).to.deep.equal(new Map([[WHEEL, sha256(original)]]));
      expect(await distFiles(root)).to.deep.equal([WHEEL]);
      expect(await tempUploads(root)).to.deep.equal([]);
    }

    const respellings: [filename: string, name: string, version: string][] = [
      ['Demo-1.0-py3-none-any.whl', 'Demo', '1.0'],
      ['DEMO-1.0-py3-none-any.whl', 'DEMO', '1.0'],
      ['demo-1.0-py3-none-any.WHL', 'demo', '1.0'],
      ['demo-1.0.0-py3-none-any.whl', 'demo', '1.0.0'],
      ['demo-1.0-PY3-None-Any.whl', 'demo', '1.0'],
    ];
    for (const [filename, name, version] of respellings) {
      it(`409 for ${filename} with other bytes`, async () => {
        const other = await archive(filename, { kind: 'wheel', name: 'demo', version, extra: `other ${filename}` });
        const ans = await send(url, name, version, filename, other);
        expectRefused(ans, 409, new RegExp(`^File already exists: ${filename.replace(/\./g, '\\.')} \\(as demo-1\\.0-py3-none-any\\.whl\\)$`));
        expect(await fsp.readFile(path.join(root, WHEEL))).to.deep.equal(original);
        await unchanged();
      });
    }

    it('409 for another spelling even with the same bytes (one file, one name)', async () => {
      const ans = await send(url, 'Demo', '1.0', 'Demo-1.0-py3-none-any.whl', original);
      expectRefused(ans, 409, /^File already exists: Demo-1\.0-py3-none-any\.whl \(as demo-1\.0-py3-none-any\.whl\)$/);
      await unchanged();
    });

    it('200 for an identical re-upload under the exact name (twine --skip-existing, PyPI)', async () => {
      const ans = await send(url, 'demo', '1.0', WHEEL, original);
      expect(ans.status, ans.statusText).to.equal(200);
      expect(ans.body).to.match(/already uploaded with identical content/);
      await unchanged();
    });

    it('a wheel with other tags is another file: accepted', async () => {
      const filename = 'demo-1.0-py2.py3-none-any.whl';
      const other = await archive(filename, { kind: 'wheel', name: 'demo', version: '1.0', extra: 'py2.py3' });
      const ans = await send(url, 'demo', '1.0', filename, other);
      expect(ans.status, ans.statusText).to.equal(200);
      // ...whose tag set in another order and case is that same file again
      const again = await send(url, 'demo', '1.0', 'demo-1.0-PY3.py2-none-any.whl', original);
      expectRefused(again, 409, /^File already exists: demo-1\.0-PY3\.py2-none-any\.whl \(as demo-1\.0-py2\.py3-none-any\.whl\)$/);
      await fsp.rm(path.join(root, filename));
      expect(await eventually(async () => !(await listed(url, 'demo')).has(filename))).to.equal(true);
      await unchanged();
    });
  });

  describe('separators in the project name: demo_pkg, demo.pkg, demo-pkg', () => {
    let url: string;
    let root: string;
    before(async () => {
      ({ url, root } = await serve());
    });

    it('409 for demo.pkg-1.0-py3-none-any.whl when demo_pkg-1.0-py3-none-any.whl exists', async () => {
      const first = await archive('demo_pkg-1.0-py3-none-any.whl', { kind: 'wheel', name: 'demo-pkg', version: '1.0' });
      expect((await send(url, 'demo_pkg', '1.0', 'demo_pkg-1.0-py3-none-any.whl', first)).status).to.equal(200);
      const other = await archive('demo.pkg-1.0-py3-none-any.whl', { kind: 'wheel', name: 'demo-pkg', version: '1.0', extra: 'other' });
      const ans = await send(url, 'demo.pkg', '1.0', 'demo.pkg-1.0-py3-none-any.whl', other);
      expectRefused(ans, 409, /^File already exists: demo\.pkg-1\.0-py3-none-any\.whl \(as demo_pkg-1\.0-py3-none-any\.whl\)$/);
      expect(await distFiles(root)).to.deep.equal(['demo_pkg-1.0-py3-none-any.whl']);
    });

    it('409 for demo.pkg-2.0.tar.gz and demo-pkg-2.0.tar.gz when demo_pkg-2.0.tar.gz exists', async () => {
      const first = await archive('demo_pkg-2.0.tar.gz', { kind: 'sdist', name: 'demo-pkg', version: '2.0' });
      expect((await send(url, 'demo_pkg', '2.0', 'demo_pkg-2.0.tar.gz', first)).status).to.equal(200);
      for (const filename of ['demo.pkg-2.0.tar.gz', 'demo-pkg-2.0.tar.gz', 'Demo_Pkg-2.0.TAR.GZ', 'demo_pkg-2.0.0.tar.gz']) {
        const version = filename.includes('2.0.0') ? '2.0.0' : '2.0';
        const other = await archive(filename, { kind: 'sdist', name: 'demo-pkg', version, extra: filename });
        const ans = await send(url, 'demo-pkg', version, filename, other);
        expectRefused(ans, 409, new RegExp(`^File already exists: ${filename.replace(/\./g, '\\.')} \\(as demo_pkg-2\\.0\\.tar\\.gz\\)$`));
      }
      expect(await distFiles(root)).to.deep.equal(['demo_pkg-1.0-py3-none-any.whl', 'demo_pkg-2.0.tar.gz']);
      expect((await listed(url, 'demo-pkg')).get('demo_pkg-2.0.tar.gz')).to.equal(sha256(first));
      expect(await tempUploads(root)).to.deep.equal([]);
    });
  });

  describe('--overwrite with another spelling', () => {
    it('replaces the existing file (under its name) instead of adding a second one', async () => {
      const { url, root } = await serve(['--overwrite']);
      const WHEEL = 'ow_demo-1.0-py3-none-any.whl';
      const first = await archive(WHEEL, { kind: 'wheel', name: 'ow-demo', version: '1.0' });
      expect((await send(url, 'ow-demo', '1.0', WHEEL, first)).status).to.equal(200);
      const newer = await archive('OW_Demo-1.0.0-py3-none-any.whl', { kind: 'wheel', name: 'ow-demo', version: '1.0.0', extra: 'newer' });
      const ans = await send(url, 'OW_Demo', '1.0.0', 'OW_Demo-1.0.0-py3-none-any.whl', newer);
      expect(ans.status, ans.statusText).to.equal(200);
      expect(ans.body).to.include(`replaced ${WHEEL}`);
      expect(await distFiles(root)).to.deep.equal([WHEEL]);
      expect(await fsp.readFile(path.join(root, WHEEL))).to.deep.equal(newer);
      expect(await listed(url, 'ow-demo')).to.deep.equal(new Map([[WHEEL, sha256(newer)]]));
    });
  });

  describe('concurrent uploads of one release', () => {
    let url: string;
    let root: string;
    before(async () => {
      ({ url, root } = await serve());
    });

    it('8 concurrent sdists of one release under different spellings: exactly one wins, the directory holds one sdist', async () => {
      const spellings: [filename: string, version: string, kind: ArchiveSpec['kind']][] = [
        ['race_sdist-5.0.tar.gz', '5.0', 'sdist'],
        ['race_sdist-5.0.zip', '5.0', 'sdist-zip'],
        ['Race_Sdist-5.0.tar.gz', '5.0', 'sdist'],
        ['race_sdist-5.0.0.tar.gz', '5.0.0', 'sdist'],
        ['race-sdist-5.0.tar.gz', '5.0', 'sdist'],
        ['RACE_SDIST-5.0.zip', '5.0', 'sdist-zip'],
        ['race_sdist-5.0.0.zip', '5.0.0', 'sdist-zip'],
        ['race.sdist-5.0.TAR.GZ', '5.0', 'sdist'],
      ];
      const bodies = await Promise.all(spellings.map(([f, version, kind], i) => archive(f, { kind, name: 'race-sdist', version, extra: `contender ${i}` })));
      expect(new Set(bodies.map(sha256)).size).to.equal(8);
      const answers = await Promise.all(spellings.map(([f, version], i) => send(url, 'race-sdist', version, f, bodies[i])));
      const statuses = answers.map((a) => `${a.status} ${a.statusText}`);
      expect(answers.filter((a) => a.status === 200), statuses.join('\n')).to.have.length(1);
      for (const a of answers.filter((x) => x.status !== 200)) {
        expect(a.statusText, statuses.join('\n')).to.match(/^(File already exists: .* \(as .*\)|Only one sdist may be uploaded per release: .* is already the sdist of race-sdist 5\.0(\.0)?)$/);
        expect(a.status).to.equal(a.statusText.startsWith('File already exists') ? 409 : 400);
      }
      const winner = spellings[answers.findIndex((a) => a.status === 200)][0];
      expect(await distFiles(root)).to.deep.equal([winner]);
      expect([...(await listed(url, 'race-sdist')).keys()]).to.deep.equal([winner]);
      expect(await tempUploads(root)).to.deep.equal([]);
    });

    it('two spellings of one wheel uploaded at once: one wins, the other gets 409 (five rounds)', async () => {
      for (let round = 0; round < 5; round++) {
        const version = `6.${round}`;
        const names = [`race_sdist-${version}-py3-none-any.whl`, `Race_Sdist-${version}.0-py3-none-any.whl`];
        const bodies = await Promise.all(names.map((f, i) => archive(f, { kind: 'wheel', name: 'race-sdist', version, extra: `wheel ${i}` })));
        const answers = await Promise.all(names.map((f, i) => send(url, 'race-sdist', i === 0 ? version : `${version}.0`, f, bodies[i])));
        const statuses = answers.map((a) => a.status).sort();
        expect(statuses, answers.map((a) => a.statusText).join('\n')).to.deep.equal([200, 409]);
        const files = (await distFiles(root)).filter((f) => f.toLowerCase().includes(`-${version}`));
        expect(files, `round ${round}`).to.have.length(1);
      }
      expect(await tempUploads(root)).to.deep.equal([]);
    });
  });

  describe('the content must be the archive its name says', () => {
    let url: string;
    let root: string;
    before(async () => {
      ({ url, root } = await serve());
    });

    afterEach(async () => {
      expect(await tempUploads(root)).to.deep.equal([]);
    });

    async function refused(filename: string, name: string, bytes: Buffer, reason: RegExp): Promise<void> {
      const ans = await send(url, name, '1.0', filename, bytes);
      expectRefused(ans, 400, reason);
      expect(await distFiles(root)).not.to.include(filename);
      expect((await listed(url, name)).has(filename)).to.equal(false);
    }

    it('400 for a .tar.gz that is not gzip data', async () => {
      await refused('notgz-1.0.tar.gz', 'notgz', randomBytes(4096), /^Invalid distribution: notgz-1\.0\.tar\.gz: corrupt gzip: /);
    });

    it('400 for a .tar.gz that is gzip but not a tarball', async () => {
      const bytes = gzipSync(Buffer.from('this is no tar archive\n'.repeat(100)));
      await refused('nottar-1.0.tar.gz', 'nottar', bytes, /^Invalid distribution: nottar-1\.0\.tar\.gz: corrupt tar: /);
    });

    it('400 for a .zip that is not a zip (a tarball named .zip)', async () => {
      const tgz = await archive('notzip-1.0.tar.gz', { kind: 'sdist', name: 'notzip', version: '1.0' });
      await refused('notzip-1.0.zip', 'notzip', tgz, /^Invalid distribution: notzip-1\.0\.zip: corrupt zip: /);
    });

    it('400 for a wheel whose METADATA has no Name', async () => {
      const bytes = await archive('noname-1.0-py3-none-any.whl', { kind: 'wheel', name: 'noname', version: '1.0', pkginfo: 'Metadata-Version: 2.1\nVersion: 1.0\nSummary: x\n\n' });
      await refused('noname-1.0-py3-none-any.whl', 'noname', bytes, /^Invalid distribution: noname-1\.0-py3-none-any\.whl: METADATA has no Name$/);
    });

    it('400 for a wheel whose METADATA has no Version', async () => {
      const bytes = await archive('nover-1.0-py3-none-any.whl', { kind: 'wheel', name: 'nover', version: '1.0', pkginfo: 'Metadata-Version: 2.1\nName: nover\nSummary: x\n\n' });
      await refused('nover-1.0-py3-none-any.whl', 'nover', bytes, /^Invalid distribution: nover-1\.0-py3-none-any\.whl: METADATA has no Version$/);
    });

    it('lists files dropped in by hand as before, and still accepts a valid sdist', async () => {
      // A hand-dropped broken archive stays listed (the directory is the source of truth).
      await fsp.writeFile(path.join(root, 'handmade-1.0.tar.gz'), randomBytes(2048));
      expect(await eventually(async () => (await listed(url, 'handmade')).has('handmade-1.0.tar.gz'), 10_000)).to.equal(true);
      const ok = await archive('good_sdist-1.0.tar.gz', { kind: 'sdist', name: 'good-sdist', version: '1.0' });
      const ans = await send(url, 'good-sdist', '1.0', 'good_sdist-1.0.tar.gz', ok);
      expect(ans.status, ans.statusText).to.equal(200);
    });
  });
});
