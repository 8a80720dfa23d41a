import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { copyExample, spawnServer, tempDir, waitHealthy, type Spawned } from './helpers/server.js';
import { EXAMPLE_FILES, EXAMPLE_PROJECTS, basename } from './helpers/example.js';
import { buildWheel } from '../bench/soak.js';
import { JSON_V1, anchors, rawRequest, request, sha256, sleep, type ProjectJson, type RawResponse } from './helpers/http.js';

/** The exact core-metadata bytes inside an archive, read with Python's zipfile/tarfile. */
function metadataInArchive(file: string): Buffer {
  const script = `
import sys, tarfile, zipfile
p = sys.argv[1]
if p.endswith('.whl'):
    z = zipfile.ZipFile(p)
    names = [n for n in z.namelist() if n.count('/') == 1 and n.endswith('.dist-info/METADATA')]
    assert len(names) == 1, names
    data = z.read(names[0])
else:
    t = tarfile.open(p)
    names = [n for n in t.getnames() if n.count('/') == 1 and n.endswith('/PKG-INFO')]
    assert len(names) == 1, names
    data = t.extractfile(names[0]).read()
sys.stdout.buffer.write(data)
`;
  return execFileSync('/usr/bin/python3', ['-c', script, file], { maxBuffer: 64 * 1024 * 1024 });
}

const FORBIDDEN_CONTENT = [/root:.*:0:0:/, /"name":\s*"pypi-lite"/, /devDependencies/, /@VERSION@/];

function expectNotLeaked(res: { status: number; body: Buffer }, what: string): void {
  const text = res.body.toString('latin1');
  for (const re of FORBIDDEN_CONTENT) expect(re.test(text), `${what} leaked ${re}`).to.equal(false);
}

describe('downloads: /packages/ (real server)', function () {
  this.timeout(60_000);
  let root: string;
  let outside: string;
  let srv: Spawned;
  /** url -> file, from the JSON project pages */
  const pages = new Map<string, ProjectJson>();

  const fileUrl = (relPath: string) => `/packages/${relPath.split('/').map(encodeURIComponent).join('/')}`;
  const onDisk = (relPath: string) => fsp.readFile(path.join(root, relPath));

  before(async () => {
    root = await copyExample();
    outside = await tempDir('pypi-lite-outside-');
    // Things that must never be reachable: a link to /etc/passwd with a distribution name, a
    // linked directory holding a real distribution, and non-distribution files in the root.
    await fsp.symlink('/etc/passwd', path.join(root, 'evil-1.0.tar.gz'));
    await fsp.copyFile(path.join(root, 'pypi_lite_demo-1.0.0.tar.gz'), path.join(outside, 'outside_pkg-1.0.tar.gz'));
    await fsp.symlink(outside, path.join(root, 'linked'));
    await fsp.writeFile(path.join(root, 'secret.txt'), 'root:x:0:0:secret\n');
    srv = await spawnServer(['--disable-fallback', root]);
    await waitHealthy(srv.url, { idle: true });
    for (const p of EXAMPLE_PROJECTS) {
      const r = await fetch(`${srv.url}/simple/${p}/`, { headers: { accept: JSON_V1 } });
      pages.set(p, (await r.json()) as ProjectJson);
    }
  });

  after(async () => {
    await srv?.stop();
    if (root) await fsp.rm(root, { recursive: true, force: true });
    if (outside) await fsp.rm(outside, { recursive: true, force: true });
  });

  describe('files', () => {
    for (const f of EXAMPLE_FILES) {
      it(`GET ${f.relPath}: the bytes on disk, with the advertised sha256`, async () => {
        const page = pages.get(f.project)!;
        const entry = page.files.find((x) => x.filename === basename(f.relPath));
        expect(entry, 'listed on its project page').to.not.equal(undefined);
        const u = new URL(entry!.url, `${srv.url}/simple/${f.project}/`);
        expect(u.pathname).to.equal(fileUrl(f.relPath));
        const res = await request(srv.url, u.pathname, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
        const disk = await onDisk(f.relPath);
        expect(res.status).to.equal(200);
        expect(res.headers['content-encoding'], 'archives are never re-encoded').to.equal(undefined);
        expect(Number(res.headers['content-length'])).to.equal(disk.length);
        expect(res.headers['accept-ranges']).to.equal('bytes');
        expect(res.headers.etag).to.be.a('string').and.match(/^"[^"]+"$/);
        expect(Number.isNaN(Date.parse(res.headers['last-modified'] ?? ''))).to.equal(false);
        expect(res.body.equals(disk)).to.equal(true);
        expect(sha256(res.body)).to.equal(entry!.hashes.sha256);
      });
    }

    it('answers HEAD with Content-Length, Accept-Ranges and no body', async () => {
      const rel = 'pypi_lite_demo-2.0.0-py3-none-any.whl';
      const disk = await onDisk(rel);
      const get = await request(srv.url, fileUrl(rel));
      const head = await request(srv.url, fileUrl(rel), { method: 'HEAD' });
      expect(head.status).to.equal(200);
      expect(head.body.length).to.equal(0);
      expect(Number(head.headers['content-length'])).to.equal(disk.length);
      expect(head.headers['accept-ranges']).to.equal('bytes');
      expect(head.headers.etag).to.equal(get.headers.etag);
      expect(head.headers['last-modified']).to.equal(get.headers['last-modified']);
    });

    it('serves files in a subdirectory', async () => {
      const res = await request(srv.url, '/packages/legacy/pypi_lite_extras-0.1.0.tar.gz');
      expect(res.status).to.equal(200);
      expect(res.body.equals(await onDisk('legacy/pypi_lite_extras-0.1.0.tar.gz'))).to.equal(true);
      expect((await request(srv.url, '/packages/pypi_lite_extras-0.1.0.tar.gz')).status, 'not at the top level').to.equal(404);
    });

    it('does not serve files that are not distributions', async () => {
      for (const p of ['/packages/README.md', '/packages/secret.txt', '/packages', '/packages/legacy', '/packages/legacy/']) {
        const res = await request(srv.url, p);
        expect(res.status, p).to.equal(404);
        expectNotLeaked(res, p);
      }
      // /packages/ itself is the flat list of distributions (pypiserver's --find-links page), nothing else.
      const index = await request(srv.url, '/packages/');
      expect(index.status).to.equal(200);
      expectNotLeaked(index, '/packages/');
      expect(index.body.toString()).to.not.match(/README\.md|secret\.txt/);
    });
  });

  describe('ranges and conditional requests', () => {
    const rel = 'pypi_lite_demo-1.0.0-py3-none-any.whl';
    let disk: Buffer;
    let etag: string;
    before(async () => {
      disk = await onDisk(rel);
      etag = (await request(srv.url, fileUrl(rel), { method: 'HEAD' })).headers.etag as string;
    });

    it('Range: bytes=0-9 gives 206 with the first ten bytes', async () => {
      const res = await request(srv.url, fileUrl(rel), { headers: { range: 'bytes=0-9', 'accept-encoding': 'identity' } });
      expect(res.status).to.equal(206);
      expect(res.headers['content-range']).to.equal(`bytes 0-9/${disk.length}`);
      expect(Number(res.headers['content-length'])).to.equal(10);
      expect(res.body.equals(disk.subarray(0, 10))).to.equal(true);
    });

    it('a suffix range gives the last bytes (what lazy-wheel readers ask for)', async () => {
      const res = await request(srv.url, fileUrl(rel), { headers: { range: 'bytes=-10' } });
      expect(res.status).to.equal(206);
      expect(res.headers['content-range']).to.equal(`bytes ${disk.length - 10}-${disk.length - 1}/${disk.length}`);
      expect(res.body.equals(disk.subarray(disk.length - 10))).to.equal(true);
    });

    it('an open-ended range gives the rest of the file', async () => {
      const res = await request(srv.url, fileUrl(rel), { headers: { range: 'bytes=100-' } });
      expect(res.status).to.equal(206);
      expect(res.headers['content-range']).to.equal(`bytes 100-${disk.length - 1}/${disk.length}`);
      expect(res.body.equals(disk.subarray(100))).to.equal(true);
    });

    it('an unsatisfiable range gives 416 with Content-Range: bytes */size', async () => {
      const res = await request(srv.url, fileUrl(rel), { headers: { range: `bytes=${disk.length}-` } });
      expect(res.status).to.equal(416);
      expect(res.headers['content-range']).to.equal(`bytes */${disk.length}`);
      expect(res.body.equals(disk)).to.equal(false);
    });

    it('If-Range with the current ETag honours the range, a stale one gives the whole file', async () => {
      const ok = await request(srv.url, fileUrl(rel), { headers: { range: 'bytes=10-19', 'if-range': etag } });
      expect(ok.status).to.equal(206);
      expect(ok.body.equals(disk.subarray(10, 20))).to.equal(true);
      const stale = await request(srv.url, fileUrl(rel), { headers: { range: 'bytes=10-19', 'if-range': '"something-else"' } });
      expect(stale.status).to.equal(200);
      expect(stale.headers['content-range']).to.equal(undefined);
      expect(stale.body.equals(disk)).to.equal(true);
    });

    it('If-None-Match with the ETag gives 304 without a body', async () => {
      const res = await request(srv.url, fileUrl(rel), { headers: { 'if-none-match': etag } });
      expect(res.status).to.equal(304);
      expect(res.body.length).to.equal(0);
      const other = await request(srv.url, fileUrl(rel), { headers: { 'if-none-match': '"nope"' } });
      expect(other.status).to.equal(200);
      expect(other.body.equals(disk)).to.equal(true);
    });
  });

  describe('PEP 658 metadata files', () => {
    it('advertises metadata for every wheel, identically in HTML and JSON', async () => {
      for (const p of EXAMPLE_PROJECTS) {
        const html = await (await fetch(`${srv.url}/simple/${p}/`, { headers: { accept: 'text/html' } })).text();
        const as = anchors(html);
        for (const f of pages.get(p)!.files) {
          const a = as.find((x) => x.text === f.filename)!;
          const cm = f['core-metadata'];
          if (f.filename.endsWith('.whl')) expect(cm, f.filename).to.be.an('object');
          if (cm && typeof cm === 'object') {
            expect(a.attrs['data-core-metadata'], f.filename).to.equal(`sha256=${cm.sha256}`);
            expect(a.attrs['data-dist-info-metadata'], f.filename).to.equal(`sha256=${cm.sha256}`);
          } else {
            expect(a.attrs, f.filename).not.to.have.property('data-core-metadata');
          }
        }
      }
    });

    it('serves <file>.metadata byte-identical to the METADATA in the archive, with the advertised hash', async () => {
      let checked = 0;
      for (const p of EXAMPLE_PROJECTS) {
        for (const f of pages.get(p)!.files) {
          const cm = f['core-metadata'];
          if (!cm || typeof cm !== 'object') continue;
          const u = new URL(`${f.url}.metadata`, `${srv.url}/simple/${p}/`);
          const res = await request(srv.url, u.pathname);
          expect(res.status, u.pathname).to.equal(200);
          const rel = decodeURIComponent(u.pathname.slice('/packages/'.length, -'.metadata'.length));
          const expected = metadataInArchive(path.join(root, rel));
          expect(res.body.equals(expected), `${rel}: served metadata differs from the archive's`).to.equal(true);
          expect(sha256(res.body)).to.equal(cm.sha256);
          expect(sha256(expected)).to.equal(cm.sha256);
          expect(Number(res.headers['content-length'])).to.equal(expected.length);
          checked++;
        }
      }
      expect(checked).to.be.at.least(5);
    });
  });

  describe('path traversal and hostile paths', () => {
    const attempts = [
      '/packages/../package.json',
      '/packages/../../package.json',
      '/packages/../../../../../../etc/passwd',
      '/packages/%2e%2e/%2e%2e/etc/passwd',
      '/packages/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd',
      '/packages/..%2fpackage.json',
      '/packages/..%2F..%2F..%2F..%2Fetc%2Fpasswd',
      '/packages/%2e%2e%5cpackage.json',
      '/packages/..\\package.json',
      '/packages/..\\..\\..\\..\\etc\\passwd',
      '/packages/legacy/../../package.json',
      '/packages/legacy/%2e%2e/%2e%2e/package.json',
      '/packages/.%2e/package.json',
      '/packages/%252e%252e/package.json',
      '/packages//etc/passwd',
      '/packages///etc/passwd',
      '/packages/%2fetc%2fpasswd',
      '/packages/%2Fetc/passwd',
      '/packages/C:%5CWindows%5Cwin.ini',
      '/packages/pypi_lite_demo-1.0.0.tar.gz%00.txt',
      '/packages/%00',
      '/packages/..%00/package.json',
      '/packages/%c0%ae%c0%ae/package.json',
      '/packages/%',
      '/packages/.pypi-lite-cache',
      '/packages/.build/rebuild.sh',
      '/packages/evil-1.0.tar.gz',
      '/packages/evil-1.0.tar.gz.metadata',
      '/packages/linked/outside_pkg-1.0.tar.gz',
      '/packages/linked/../../../etc/passwd',
      `/packages/${'a'.repeat(10_000)}`,
      `/packages/${'../'.repeat(3_000)}etc/passwd`,
      `/packages/${'%2e%2e%2f'.repeat(1_000)}etc/passwd`,
    ];

    for (const p of attempts) {
      it(`refuses ${p.length > 60 ? `${p.slice(0, 40)}... (${p.length} chars)` : p}`, async () => {
        const res: RawResponse = await request(srv.url, p);
        expect([400, 404, 414, 431], `${p.slice(0, 80)} -> ${res.status}`).to.include(res.status);
        expectNotLeaked(res, p.slice(0, 80));
        expect(res.body.length).to.be.lessThan(500);
      });
    }

    it('refuses raw request targets that the client libraries would clean up', async () => {
      const port = new URL(srv.url).port;
      const heads = [
        `GET http://127.0.0.1:${port}/packages/../../package.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        `GET /packages/..%2f..%2fpackage.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        `GET /packages/../../../etc/passwd HTTP/1.0\r\n\r\n`,
        `GET /packages/\\..\\..\\etc\\passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        Buffer.concat([Buffer.from('GET /packages/..'), Buffer.from([0]), Buffer.from('/etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]),
        `GET /packages/${'x'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        `GET /etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        `GET ../package.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      ];
      for (const h of heads) {
        const res = await rawRequest(srv.url, h);
        const what = h.toString().slice(0, 60).replace(/[\r\n\0]/g, ' ');
        expect([400, 404, 414, 431], `${what} -> ${res.status}`).to.include(res.status);
        expectNotLeaked(res, what);
      }
    });

    it('never lists or serves symbolic links, even ones that appear while running', async () => {
      const outside2 = await tempDir('pypi-lite-outside-');
      try {
        await fsp.copyFile(path.join(root, 'pypi_lite_demo-1.1.0.tar.gz'), path.join(outside2, 'late_pkg-1.0.tar.gz'));
        await fsp.symlink('/etc/passwd', path.join(root, 'late_evil-1.0.tar.gz'));
        await fsp.symlink(outside2, path.join(root, 'late-linked'));
        await sleep(1_200);
        for (const p of ['/packages/late_evil-1.0.tar.gz', '/packages/late-linked/late_pkg-1.0.tar.gz', '/packages/linked/outside_pkg-1.0.tar.gz', '/packages/evil-1.0.tar.gz']) {
          const res = await request(srv.url, p);
          expect(res.status, p).to.equal(404);
          expectNotLeaked(res, p);
        }
        for (const project of ['evil', 'late-evil', 'late-pkg', 'outside-pkg']) {
          const res = await fetch(`${srv.url}/simple/${project}/`, { headers: { accept: JSON_V1 } });
          expect(res.status, project).to.equal(404);
          await res.arrayBuffer();
        }
        const list = (await (await fetch(`${srv.url}/simple/`, { headers: { accept: JSON_V1 } })).json()) as { projects: { name: string }[] };
        expect(list.projects).to.have.length(EXAMPLE_PROJECTS.length);
      } finally {
        await fsp.rm(outside2, { recursive: true, force: true });
      }
    });

    it('does not follow a file that was swapped for a symbolic link after indexing', async () => {
      const rel = 'pypi_lite_demo-2.0.0.tar.gz';
      const abs = path.join(root, rel);
      const original = await fsp.readFile(abs);
      await fsp.rm(abs);
      await fsp.symlink('/etc/passwd', abs);
      try {
        const res = await request(srv.url, fileUrl(rel));
        expect(res.status).to.equal(404);
        expectNotLeaked(res, rel);
      } finally {
        await fsp.rm(abs);
        await fsp.writeFile(abs, original);
      }
    });

    it('keeps serving afterwards', async () => {
      const rel = 'pypi_lite_demo-1.1.0-py3-none-any.whl';
      const res = await request(srv.url, fileUrl(rel));
      expect(res.status).to.equal(200);
      expect(res.body.equals(await onDisk(rel))).to.equal(true);
      const health = await fetch(`${srv.url}/health`);
      expect(health.status).to.equal(200);
      await health.arrayBuffer();
      expect(srv.proc.exitCode).to.equal(null);
    });
  });

  // Issue 9 item 9: O_NOFOLLOW covers only the last component of a path.
  describe('a directory swapped for a symbolic link after indexing (own server, no watcher)', () => {
    it('does not serve the file the link leads to', async () => {
      const work = await tempDir('pypi-lite-dirswap-');
      let other: Spawned | undefined;
      try {
        const swapRoot = path.join(work, 'root');
        const elsewhere = path.join(work, 'elsewhere');
        await fsp.mkdir(path.join(swapRoot, 'sub'), { recursive: true });
        await fsp.mkdir(elsewhere);
        const mine = buildWheel('swap-demo', '1.0', randomBytes(4096));
        const theirs = buildWheel('swap-demo', '1.0', randomBytes(4096), { summary: 'THEIRS not ours' });
        await fsp.writeFile(path.join(swapRoot, 'sub', mine.filename), Buffer.concat(mine.parts));
        await fsp.writeFile(path.join(elsewhere, theirs.filename), Buffer.concat(theirs.parts));
        // --poll with a long interval: nothing notices the swap, the download route is on its own.
        other = await spawnServer(['--disable-fallback', '--poll', '--poll-interval', '3600', swapRoot]);
        await waitHealthy(other.url, { idle: true });
        const url = `/packages/sub/${mine.filename}`;
        const ok = await request(other.url, url);
        expect(ok.status).to.equal(200);
        expect(ok.body.equals(Buffer.concat(mine.parts))).to.equal(true);

        await fsp.rename(path.join(swapRoot, 'sub'), path.join(work, 'sub-moved'));
        await fsp.symlink(elsewhere, path.join(swapRoot, 'sub'));
        for (const method of ['GET', 'HEAD']) {
          const res = await request(other.url, url, { method });
          expect(res.status, method).to.equal(404);
          expect(res.body.includes(Buffer.concat(theirs.parts).subarray(0, 64))).to.equal(false);
          expect(res.headers.etag, method).to.equal(undefined);
        }
        // Nor the metadata read from the archive the link leads to.
        expect((await request(other.url, `${url}.metadata`)).status, '.metadata').to.equal(404);
        // Nor anything else that reads metadata by path: the JSON API and the web UI.
        for (const page of ['/pypi/swap-demo/json', '/pypi/swap-demo/1.0/json', '/project/swap-demo/']) {
          const res = await request(other.url, page);
          expect(res.body.toString('utf8'), page).to.not.contain('THEIRS');
        }
      } finally {
        await other?.stop();
        await fsp.rm(work, { recursive: true, force: true });
      }
    });
  });
});
