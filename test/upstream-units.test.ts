// Pieces of the upstream proxy on their own: defensive page parsing, the size bound on pages
// sent without a length, the file cache's size cap (LRU) and restart, --upstream-merge, and the
// command-line options.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { makeConfig } from './helpers/config.js';
import { startServer, type RunningServer } from '../lib/server.js';
import { fetchPage, UpstreamError } from '../lib/upstream/client.js';
import { FileCache } from '../lib/upstream/files.js';
import { PageParseError, parseHtmlPage, parseJsonPage } from '../lib/upstream/parse.js';
import { JSON_V1, sha256, type ProjectJson } from './helpers/http.js';
import { BIN, EXAMPLE, run, spawnServer, tempDir } from './helpers/server.js';
import { cachedBlobs, StaticUpstream } from './helpers/upstream.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const silent = pino({ level: 'silent' });

describe('upstream page parsing', () => {
  const base = 'https://up.example/simple/demo/';

  it('reads PEP 691 JSON: hashes (sha256 first), core-metadata, yanks, size, upload time, relative URLs', () => {
    const page = parseJsonPage(
      JSON.stringify({
        meta: { 'api-version': '1.1' },
        name: 'demo',
        files: [
          {
            filename: 'demo-1.0-py3-none-any.whl',
            url: '../../files/demo-1.0-py3-none-any.whl',
            hashes: { md5: 'c'.repeat(32), sha256: A.toUpperCase(), 'bad name': A },
            'requires-python': '>=3.8',
            'core-metadata': { sha256: B },
            yanked: 'bad\nrelease',
            size: 12,
            'upload-time': '2024-01-02T03:04:05.123456Z',
          },
          { filename: 'demo-1.1.tar.gz', url: 'https://files.example/demo-1.1.tar.gz', hashes: { sha256: B }, 'dist-info-metadata': true, yanked: true, size: -1, 'upload-time': 'yesterday' },
          { filename: 'demo-1.0-py3-none-any.whl', url: 'https://elsewhere/x.whl', hashes: { sha256: B } },
          { filename: '../evil.whl', url: 'x', hashes: {} },
          { filename: 'evil-1.0.tar.gz', url: 'file:///etc/passwd', hashes: {} },
          'not an object',
          null,
        ],
        versions: ['1.0', '1.1', 42, '0.9'],
      }),
      base,
    );
    expect(page.files).to.have.length(2);
    const [w, s] = page.files;
    expect(w.url).to.equal('https://up.example/files/demo-1.0-py3-none-any.whl');
    expect(Object.keys(w.hashes)).to.deep.equal(['sha256', 'md5']);
    expect(w.hashes.sha256).to.equal(A);
    expect(w).to.include({ requiresPython: '>=3.8', coreMetadataSha256: B, yanked: 'bad release', size: 12, uploadTime: '2024-01-02T03:04:05.123456Z' });
    expect(s).to.include({ coreMetadataSha256: null, yanked: '', size: null, uploadTime: null });
    expect(page.versions).to.deep.equal(['0.9', '1.0', '1.1']);
  });

  it('refuses JSON that is not a project page', () => {
    for (const body of ['{', '[]', '{"files": 3}', 'null']) expect(() => parseJsonPage(body, base), body).to.throw(PageParseError);
  });

  it('reads PEP 503 HTML with htmlparser2: entities, data-* attributes, <base>, fragments', async () => {
    const page = await parseHtmlPage(
      `<html><head><base href="https://mirror.example/pkgs/"></head><body>
      <A HREF="demo-1.0.tar.gz#sha256=${A}" data-requires-python="&gt;=3.9" data-yanked="" data-dist-info-metadata="sha256=${B}">demo-1.0.tar.gz</A>
      <a href="sub/demo-1.1.tar.gz#md5=${'c'.repeat(32)}" data-core-metadata="true">demo-1.1.tar.gz</a>
      <a href="demo%2D1.2.tar.gz#sha256=nothex">x</a>
      <a href="ftp://x/demo-1.3.tar.gz">ftp</a><a name="no-href">n</a><a href="http://[bad">b</a>
      </body>`,
      base,
    );
    expect(page.files.map((f) => f.filename)).to.deep.equal(['demo-1.0.tar.gz', 'demo-1.1.tar.gz', 'demo-1.2.tar.gz']);
    const [a, b, c] = page.files;
    expect(a).to.include({ url: 'https://mirror.example/pkgs/demo-1.0.tar.gz', requiresPython: '>=3.9', yanked: '', coreMetadataSha256: B });
    expect(a.hashes).to.deep.equal({ sha256: A });
    expect(b).to.include({ url: 'https://mirror.example/pkgs/sub/demo-1.1.tar.gz', yanked: null, coreMetadataSha256: null });
    expect(b.hashes).to.deep.equal({ md5: 'c'.repeat(32) });
    expect(c.hashes).to.deep.equal({});
    expect(page.versions).to.deep.equal(['1.0', '1.1', '1.2']);
  });
});

describe('upstream client bounds', () => {
  const up = new StaticUpstream();
  before(async () => {
    up.handlers.set('/chunked/', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      for (let i = 0; i < 50; i++) res.write('x'.repeat(100));
      res.end();
    });
    up.handlers.set('/loop/', (_req, res) => {
      res.writeHead(302, { location: '/loop/' });
      res.end();
    });
    up.handlers.set('/nowhere/', (_req, res) => {
      res.writeHead(301);
      res.end();
    });
    await up.start();
  });
  after(() => up.stop());

  it('cuts off a page sent without Content-Length once it exceeds the bound', async () => {
    const err = await fetchPage(`${up.url}/chunked/`, { timeoutMs: 5_000, maxBytes: 1_000 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(UpstreamError);
    expect((err as UpstreamError).message).to.match(/larger than 1000 bytes/);
    expect((await fetchPage(`${up.url}/chunked/`, { timeoutMs: 5_000, maxBytes: 10_000 })).status).to.equal('ok');
  });

  it('stops following redirects after a few hops, and refuses a redirect without a Location', async () => {
    for (const p of ['/loop/', '/nowhere/']) {
      const err = await fetchPage(`${up.url}${p}`, { timeoutMs: 5_000, maxBytes: 1_000 }).catch((e: unknown) => e);
      expect(err, p).to.be.instanceOf(UpstreamError);
      expect((err as UpstreamError).kind).to.equal('bad');
    }
    expect(up.seen('/loop/').length).to.be.at.most(6);
  });

  it('reports an unreachable upstream as unavailable', async () => {
    const err = await fetchPage('http://127.0.0.1:1/simple/x/', { timeoutMs: 5_000, maxBytes: 1_000 }).catch((e: unknown) => e);
    expect((err as UpstreamError).kind).to.equal('unavailable');
  });
});

describe('upstream file cache', () => {
  const up = new StaticUpstream();
  let dir: string;
  const blobs = [Buffer.alloc(1000, 1), Buffer.alloc(1000, 2), Buffer.alloc(1000, 3)];
  before(async () => {
    dir = await tempDir('pypi-lite-blobs-');
    blobs.forEach((b, i) => up.add('p', { filename: `p-${i}.tar.gz`, bytes: b }));
    await up.start();
  });
  after(async () => {
    await up.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const spec = (i: number) => ({ kind: 'file' as const, sha256: sha256(blobs[i]), url: `${up.url}/files/p-${i}.tar.gz`, filename: `p-${i}.tar.gz`, size: 1000, maxBytes: 1e9 });

  it('keeps at most --upstream-cache-max bytes, dropping the least recently used file, and finds its files again after a restart', async () => {
    const cache = new FileCache(dir, { maxBytes: 2_500, idleTimeoutMs: 5_000 }, silent);
    await cache.init();
    await cache.fetch(spec(0), null);
    await cache.fetch(spec(1), null);
    expect(await cache.cached(sha256(blobs[0]))).to.not.equal(null); // 0 is now the most recently used
    await cache.fetch(spec(2), null);
    expect((await cachedBlobs(dir)).sort()).to.deep.equal([sha256(blobs[0]), sha256(blobs[2])].sort());
    expect(cache.bytes).to.equal(2_000);
    await fsp.writeFile(path.join(dir, 'tmp', 'leftover'), 'x');
    const again = new FileCache(dir, { maxBytes: 2_500, idleTimeoutMs: 5_000 }, silent);
    await again.init();
    expect(again.bytes).to.equal(2_000);
    expect(await again.cached(sha256(blobs[2]))).to.not.equal(null);
    expect(await fsp.readdir(path.join(dir, 'tmp'))).to.deep.equal([]);
  });

  it('stops running downloads at shutdown and leaves no temporary file', async () => {
    up.handlers.set('/files/stuck.tar.gz', (_req, res) => {
      res.writeHead(200, { 'content-length': 1000 });
      res.write(Buffer.alloc(10));
    });
    const cache = new FileCache(dir, { maxBytes: null, idleTimeoutMs: 30_000 }, silent);
    await cache.init();
    const running = cache.fetch({ ...spec(1), url: `${up.url}/files/stuck.tar.gz`, filename: 'stuck.tar.gz' }, null).catch((e: unknown) => e);
    for (let i = 0; i < 100 && !up.seen('/files/stuck.tar.gz').length; i++) await new Promise((r) => setTimeout(r, 10));
    const t0 = Date.now();
    await cache.close();
    expect(Date.now() - t0).to.be.below(5_000);
    expect(await running).to.have.property('status', 502);
    expect(await fsp.readdir(path.join(dir, 'tmp'))).to.deep.equal([]);
  });

  it('refuses a file whose upstream answer is an error or longer than listed', async () => {
    const cache = new FileCache(dir, { maxBytes: null, idleTimeoutMs: 5_000 }, silent);
    await cache.init();
    const missing = await cache.fetch({ ...spec(1), url: `${up.url}/files/absent.tar.gz` }, null).catch((e: unknown) => e);
    expect((missing as { status: number }).status).to.equal(502);
    const short = await cache.fetch({ ...spec(1), size: 999 }, null).catch((e: unknown) => e);
    expect((short as { code: string }).code).to.equal('UPSTREAM_FILE_MISMATCH');
    expect(await cachedBlobs(dir)).to.not.include(sha256(blobs[1]));
  });
});

describe('--upstream-merge', function () {
  this.timeout(60_000);
  let work: string;
  let upstream: RunningServer;
  let proxy: RunningServer;
  before(async () => {
    work = await tempDir('pypi-lite-merge-');
    const local = path.join(work, 'local');
    await fsp.mkdir(local);
    await fsp.copyFile(path.join(EXAMPLE, 'pypi_lite_demo-1.0.0-py3-none-any.whl'), path.join(local, 'pypi_lite_demo-1.0.0-py3-none-any.whl'));
    upstream = await startServer(makeConfig({ roots: [EXAMPLE], cacheDir: path.join(work, 'upcache') }), silent);
    await upstream.loaded;
    await upstream.indexer.whenIdle();
    proxy = await startServer(
      makeConfig({ roots: [local], upstream: `${upstream.url}/simple/`, upstreamCache: path.join(work, 'cache'), upstreamMerge: new Set(['pypi-lite-demo']) }),
      silent,
    );
    await proxy.loaded;
    await proxy.indexer.whenIdle();
  });
  after(async () => {
    await proxy?.close();
    await upstream?.close();
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('lists a merged project with its local files first and the upstream files of other names', async () => {
    for (let round = 0; round < 2; round++) {
      const j = (await (await fetch(`${proxy.url}/simple/pypi-lite-demo/`, { headers: { accept: JSON_V1 } })).json()) as ProjectJson;
      expect(j.versions).to.deep.equal(['1.0.0', '1.1.0', '2.0.0']);
      expect(j.files[0]).to.include({ filename: 'pypi_lite_demo-1.0.0-py3-none-any.whl', url: '../../packages/pypi_lite_demo-1.0.0-py3-none-any.whl' });
      expect(j.files.filter((f) => f.filename === 'pypi_lite_demo-1.0.0-py3-none-any.whl')).to.have.length(1);
      expect(j.files.find((f) => f.filename === 'pypi_lite_demo-2.0.0-py3-none-any.whl')!.url).to.equal('../../packages/~upstream/pypi-lite-demo/pypi_lite_demo-2.0.0-py3-none-any.whl');
    }
    // The web UI recommends the single index: the upstream answers for every other project.
    const ui = await (await fetch(`${proxy.url}/project/pypi-lite-demo/`)).text();
    expect(ui).to.include(`pip install --index-url ${proxy.url}/simple/ pypi-lite-demo`);
    const r = await fetch(`${proxy.url}/packages/~upstream/pypi-lite-demo/pypi_lite_demo-2.0.0-py3-none-any.whl`);
    expect(r.status).to.equal(200);
    expect(sha256(Buffer.from(await r.arrayBuffer()))).to.equal(sha256(await fsp.readFile(path.join(EXAMPLE, 'pypi_lite_demo-2.0.0-py3-none-any.whl'))));
  });
});

describe('upstream options on the command line', function () {
  this.timeout(60_000);

  it('refuses a non-http(s) --upstream, a cache inside a package directory and an unusable cache', async () => {
    const root = await tempDir('pypi-lite-opt-');
    try {
      const bad = await run(process.execPath, [BIN, 'serve', '-p', '0', '--upstream', 'file:///srv/simple/', root], { env: process.env });
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.match(/only http and https/);
      const inside = await run(process.execPath, [BIN, 'serve', '-p', '0', '--upstream', 'http://127.0.0.1:1/simple', '--upstream-cache', path.join(root, 'c'), root], { env: process.env });
      expect(inside.code).to.equal(2);
      expect(inside.stderr).to.match(/inside a package directory/);
      const notDir = `${root}-file`;
      await fsp.writeFile(notDir, 'x');
      const unusable = await run(process.execPath, [BIN, 'serve', '-p', '0', '--upstream', 'http://127.0.0.1:1/simple', '--upstream-cache', path.join(notDir, 'cache'), root], { env: process.env, timeoutMs: 20_000 });
      await fsp.rm(notDir);
      expect(unusable.code).to.equal(2);
      expect(unusable.stderr).to.match(/^pypi-lite: cannot use the upstream cache .*-file\/cache/);
    } finally {
      await fsp.rm(root, { recursive: true, force: true });
    }
  });

  it('takes PYPI_LITE_UPSTREAM* from the environment and reports the upstream in /health', async () => {
    const work = await tempDir('pypi-lite-optenv-');
    const srv = await spawnServer([EXAMPLE], {
      env: { PYPI_LITE_UPSTREAM: 'http://127.0.0.1:1/simple', PYPI_LITE_UPSTREAM_CACHE: path.join(work, 'c'), PYPI_LITE_UPSTREAM_MERGE: 'Foo_Bar,baz', PYPI_LITE_CACHE_DIR: path.join(work, 'd') },
    });
    try {
      const h = (await (await fetch(`${srv.url}/health`)).json()) as { upstream: { url: string; state: string } };
      expect(h.upstream).to.include({ url: 'http://127.0.0.1:1/simple/', state: 'unknown' });
      expect(srv.output()).to.match(/"merge":\["foo-bar","baz"\]/);
      const unknown = await fetch(`${srv.url}/simple/not-here/`);
      expect(unknown.status).to.equal(502);
      expect(unknown.statusText).to.match(/^Upstream index unavailable/);
    } finally {
      await srv.stop();
      await fsp.rm(work, { recursive: true, force: true });
    }
  });
});
