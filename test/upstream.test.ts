// The upstream proxy (--upstream, issue 11) in front of a static PEP 503 tree served by a tiny
// node:http server: real pip resolves private and proxied projects from one index URL; private
// names are never proxied; files are verified before they are cached or completed; the cache
// survives restarts and upstream outages; hostile upstream answers never break the server.

import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import type { Config } from '../lib/core/config.js';
import { makeConfig } from './helpers/config.js';
import { hashPassword } from '../lib/auth/hashes.js';
import { startServer, type RunningServer } from '../lib/server.js';
import { metadataText, writeWheel } from './helpers/archives.js';
import { JSON_V1, anchors, request, sha256, sleep, type ProjectJson } from './helpers/http.js';
import { pip, tempDir, describeRun } from './helpers/server.js';
import { cachedBlobs, StaticUpstream } from './helpers/upstream.js';

interface LogLine {
  level: number;
  msg: string;
  project?: string;
  path?: string;
  status?: number;
}


async function wheel(dir: string, name: string, version: string, extra: [string, string][] = []): Promise<{ filename: string; bytes: Buffer }> {
  const file = await writeWheel(dir, name, version, metadataText([['Metadata-Version', '2.1'], ['Name', name], ['Version', version], ...extra]));
  return { filename: path.basename(file), bytes: await fsp.readFile(file) };
}

async function installed(target: string): Promise<string[]> {
  return (await fsp.readdir(target)).filter((f) => f.endsWith('.dist-info')).sort();
}

class Proxy {
  lines: LogLine[] = [];
  running!: RunningServer;
  constructor(readonly config: Config) {}
  async start(): Promise<this> {
    this.running = await startServer(this.config, pino({ level: 'info' }, { write: (s: string) => void this.lines.push(JSON.parse(s) as LogLine) }));
    await this.running.loaded;
    await this.running.indexer.whenIdle();
    return this;
  }
  get index(): string {
    return `${this.running.url}/simple/`;
  }
  close(): Promise<void> {
    return this.running.close();
  }
}

describe('upstream proxy in front of a static PEP 503 tree', function () {
  this.timeout(120_000);
  const up = new StaticUpstream();
  let work: string;
  let root: string;
  let cache: string;
  let proxy: Proxy;
  const files: Record<string, { filename: string; bytes: Buffer }> = {};

  const config = (over: Partial<Config> = {}) =>
    makeConfig({ roots: [root], logLevel: 'info', upstream: `${up.url}/simple/`, upstreamCache: cache, upstreamTtl: 1, upstreamTimeout: 2, ...over });

  before(async () => {
    work = await tempDir('pypi-lite-upstream-');
    root = path.join(work, 'root');
    cache = path.join(work, 'cache');
    const build = path.join(work, 'build');
    await fsp.mkdir(root);
    await fsp.mkdir(build);
    files.alpha = await wheel(build, 'alpha', '1.0', [['Requires-Dist', 'beta>=1.0']]);
    files.beta1 = await wheel(build, 'beta', '1.0');
    files.beta2 = await wheel(build, 'beta', '2.0');
    files.gamma1 = await wheel(build, 'gamma', '1.0');
    files.gamma2 = await wheel(build, 'gamma', '2.0');
    files.secretUp = await wheel(build, 'secret-pkg', '9.9');
    files.tampered = await wheel(build, 'tampered', '1.0');
    files.slow = await wheel(build, 'slowfile', '1.0');
    files.alpha11 = await wheel(build, 'alpha', '1.1', [['Requires-Dist', 'beta>=1.0']]);
    const secretLocal = await wheel(root, 'secret-pkg', '1.0');
    expect(secretLocal.filename).to.equal('secret_pkg-1.0-py3-none-any.whl');

    up.add('alpha', files.alpha);
    up.add('beta', files.beta1);
    up.add('beta', { ...files.beta2, requiresPython: '<3' });
    up.add('gamma', files.gamma1);
    up.add('gamma', { ...files.gamma2, yanked: 'broken <release>' });
    up.add('secret-pkg', files.secretUp);
    const flipped = Buffer.from(files.tampered.bytes);
    flipped[flipped.length - 30] ^= 0xff;
    up.add('tampered', { ...files.tampered, served: flipped });
    up.add('slowfile', { ...files.slow, delayMs: 400 });
    await up.start();
    proxy = await new Proxy(config()).start();
  });

  after(async () => {
    await proxy?.close();
    await up.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('pip resolves proxied projects and their dependencies from one --index-url (requires-python and yanks pass through)', async () => {
    const target = path.join(work, 't1');
    const r = await pip(['install', '--no-cache-dir', '--target', target, '--index-url', proxy.index, 'alpha', 'gamma']);
    expect(r.code, describeRun(r)).to.equal(0);
    // beta 2.0 requires Python < 3 and gamma 2.0 is yanked: pip takes beta 1.0 and gamma 1.0.
    expect(await installed(target)).to.deep.equal(['alpha-1.0.dist-info', 'beta-1.0.dist-info', 'gamma-1.0.dist-info']);
    expect(r.stdout).to.include('/packages/~upstream/alpha/alpha-1.0-py3-none-any.whl');
  });

  it('serves proxied pages through its own renderer in JSON and HTML, keeping every upstream attribute', async () => {
    const res = await fetch(`${proxy.index}gamma/`, { headers: { accept: JSON_V1 } });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal(JSON_V1);
    expect(res.headers.get('etag')).to.match(/^"/);
    const j = (await res.json()) as ProjectJson;
    expect(j.name).to.equal('gamma');
    expect(j.versions).to.deep.equal(['1.0', '2.0']);
    const g2 = j.files.find((f) => f.filename === files.gamma2.filename)!;
    expect(g2.yanked).to.equal('broken <release>');
    expect(g2.hashes.sha256).to.equal(sha256(files.gamma2.bytes));
    expect(g2.url).to.equal(`../../packages/~upstream/gamma/${files.gamma2.filename}`);
    const html = await (await fetch(`${proxy.index}beta/`, { headers: { accept: 'text/html' } })).text();
    const b2 = anchors(html).find((a) => a.text === files.beta2.filename)!;
    expect(b2.attrs['data-requires-python']).to.equal('<3');
    expect(b2.href).to.equal(`../../packages/~upstream/beta/${files.beta2.filename}#sha256=${sha256(files.beta2.bytes)}`);
    const gz = await request(proxy.running.url, '/simple/beta/', { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers['content-encoding']).to.equal('gzip');
  });

  it('never offers or fetches the upstream files of a local (private) name, warns once and counts it', async () => {
    const target = path.join(work, 't2');
    const r = await pip(['install', '--no-cache-dir', '--target', target, '--index-url', proxy.index, 'secret-pkg']);
    expect(r.code, describeRun(r)).to.equal(0);
    expect(await installed(target)).to.deep.equal(['secret_pkg-1.0.dist-info']);
    const j = (await (await fetch(`${proxy.index}secret-pkg/`, { headers: { accept: JSON_V1 } })).json()) as ProjectJson;
    expect(j.files.map((f) => f.filename)).to.deep.equal(['secret_pkg-1.0-py3-none-any.whl']);
    const direct = await request(proxy.running.url, `/packages/~upstream/secret-pkg/${files.secretUp.filename}`);
    expect(direct.status).to.equal(404);
    expect(up.seen(`/files/${files.secretUp.filename}`)).to.have.length(0);
    // The background check found the name upstream: one warning, counted in /metrics.
    for (let i = 0; i < 100 && !proxy.lines.some((l) => l.project === 'secret-pkg' && /dependency confusion/.test(l.msg)); i++) await sleep(20);
    await fetch(`${proxy.index}secret-pkg/`);
    await sleep(100);
    expect(proxy.lines.filter((l) => l.project === 'secret-pkg' && /dependency confusion/.test(l.msg))).to.have.length(1);
    const metrics = await (await fetch(`${proxy.running.url}/metrics`)).text();
    expect(metrics).to.match(/^pypi_lite_upstream_shadowed_projects_total 1$/m);
  });

  it('is no open proxy: only files listed on the upstream page can be fetched', async () => {
    const before = up.requests.length;
    for (const p of [
      '/packages/~upstream/alpha/alpha-9.9-py3-none-any.whl',
      '/packages/~upstream/alpha/..%2F..%2Fetc%2Fpasswd',
      '/packages/~upstream/alpha/http%3A%2F%2Fexample.com%2Fx.whl',
      '/packages/~upstream/Alpha/alpha-1.0-py3-none-any.whl',
      '/packages/~upstream/alpha',
    ]) {
      const r = await request(proxy.running.url, p);
      expect(r.status, p).to.equal(404);
    }
    expect(up.requests.slice(before).filter((r) => r.url.startsWith('/files/'))).to.have.length(0);
  });

  it('never completes a tampered file (wrong bytes for the listed sha256) and keeps nothing of it', async () => {
    const url = `/packages/~upstream/tampered/${files.tampered.filename}`;
    for (let i = 0; i < 2; i++) {
      const outcome = await request(proxy.running.url, url).then(
        (r) => ({ status: r.status, length: r.body.length }),
        (err: Error) => ({ error: err.message }),
      );
      // Either the connection broke mid-body or a 502 came before any byte: never a whole 200.
      if ('status' in outcome) expect(outcome.status === 502 || outcome.length < files.tampered.bytes.length, JSON.stringify(outcome)).to.equal(true);
    }
    expect(await cachedBlobs(cache)).to.not.include(sha256(files.tampered.bytes));
    const target = path.join(work, 't3');
    const r = await pip(['download', '--no-cache-dir', '--no-deps', '-d', target, '--index-url', proxy.index, 'tampered']);
    expect(r.code, describeRun(r)).to.not.equal(0);
    expect(proxy.lines.some((l) => /does not match its listed sha256/.test(l.msg))).to.equal(true);
  });

  it('shares one upstream download between concurrent requests for an uncached file', async () => {
    const url = `/packages/~upstream/slowfile/${files.slow.filename}`;
    const answers = await Promise.all([
      request(proxy.running.url, url),
      request(proxy.running.url, url),
      request(proxy.running.url, url, { method: 'HEAD' }),
      request(proxy.running.url, url, { headers: { range: 'bytes=0-9' } }),
      request(proxy.running.url, url),
    ]);
    expect(answers.map((a) => a.status)).to.deep.equal([200, 200, 200, 206, 200]);
    for (const a of [answers[0], answers[1], answers[4]]) expect(sha256(a.body)).to.equal(sha256(files.slow.bytes));
    expect(answers[3].body).to.deep.equal(files.slow.bytes.subarray(0, 10));
    expect(answers[2].headers['content-length']).to.equal(String(files.slow.bytes.length));
    expect(up.seen(`/files/${files.slow.filename}`)).to.have.length(1);
    // Served from the cache from now on: Range and ETag as for local files.
    const again = await request(proxy.running.url, url, { headers: { 'if-none-match': `"${sha256(files.slow.bytes)}"` } });
    expect(again.status).to.equal(304);
    expect(up.seen(`/files/${files.slow.filename}`)).to.have.length(1);
  });

  it('revalidates a page after the TTL (conditional request) and shows a new upstream release', async () => {
    await fetch(`${proxy.index}alpha/`);
    await sleep(1_100);
    const conditional = up.seen('/simple/alpha/').length;
    const same = (await (await fetch(`${proxy.index}alpha/`, { headers: { accept: JSON_V1 } })).json()) as ProjectJson;
    expect(same.versions).to.deep.equal(['1.0']);
    const last = up.seen('/simple/alpha/')[conditional];
    expect(last.headers['if-none-match']).to.match(/^"/);
    expect(last.status).to.equal(304);
    up.add('alpha', files.alpha11);
    await sleep(1_100);
    const j = (await (await fetch(`${proxy.index}alpha/`, { headers: { accept: JSON_V1 } })).json()) as ProjectJson;
    expect(j.versions).to.deep.equal(['1.0', '1.1']);
  });

  it('keeps serving cached pages and files when the upstream is down; unknown projects get a quick 502', async () => {
    await up.stop();
    await sleep(1_100); // every cached page is stale now
    const target = path.join(work, 't4');
    const r = await pip(['install', '--no-cache-dir', '--target', target, '--index-url', proxy.index, 'alpha==1.0']);
    expect(r.code, describeRun(r)).to.equal(0);
    expect(await installed(target)).to.deep.equal(['alpha-1.0.dist-info', 'beta-1.0.dist-info']);
    expect(proxy.lines.some((l) => /serving the cached page/.test(l.msg))).to.equal(true);
    const t0 = Date.now();
    const unknown = await request(proxy.running.url, '/simple/never-seen/');
    expect(Date.now() - t0).to.be.below(3_000);
    expect(unknown.status).to.be.oneOf([502, 504]);
    expect(unknown.body.toString()).to.match(/Upstream index/);
    const health = await fetch(`${proxy.running.url}/health`);
    expect(health.status).to.equal(200);
    expect(((await health.json()) as { upstream: { state: string } }).upstream.state).to.equal('down');
  });

  it('keeps its cache across a restart, and serves none of it without --upstream', async () => {
    await proxy.close();
    proxy = await new Proxy(config()).start();
    const target = path.join(work, 't5');
    const r = await pip(['install', '--no-cache-dir', '--target', target, '--index-url', proxy.index, 'alpha==1.0']);
    expect(r.code, describeRun(r)).to.equal(0);
    expect(await installed(target)).to.deep.equal(['alpha-1.0.dist-info', 'beta-1.0.dist-info']);
    await proxy.close();
    proxy = await new Proxy(config({ upstream: null, upstreamCache: null })).start();
    expect((await request(proxy.running.url, '/simple/alpha/')).status).to.equal(404);
    expect((await request(proxy.running.url, `/packages/~upstream/alpha/${files.alpha.filename}`)).status).to.equal(404);
    expect((await request(proxy.running.url, '/simple/secret-pkg/')).status).to.equal(200);
  });
});

describe('upstream proxy against a hostile upstream', function () {
  this.timeout(60_000);
  const up = new StaticUpstream();
  let work: string;
  let proxy: Proxy;
  let good: { filename: string; bytes: Buffer };

  before(async () => {
    work = await tempDir('pypi-lite-hostile-');
    await fsp.mkdir(path.join(work, 'root'));
    good = await wheel(work, 'good', '1.0');
    up.add('good', good);
    const goodSha = sha256(good.bytes);
    up.handlers.set('/simple/huge/', (_req, res) => {
      // Announced: refused before reading (an unannounced size is cut off while reading; see upstream-units).
      res.writeHead(200, { 'content-type': 'text/html', 'content-length': 25 * 1024 * 1024 });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 25 && !res.destroyed) {
          sent++;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    up.handlers.set('/simple/broken/', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<html><body><a href="../../files/${good.filename}#sha256=${goodSha}">x</a><a href=<<<"><a href="file:///etc/passwd#sha256=${goodSha}">p</a><a href="javascript:alert(1)"><table><a href`);
    });
    up.handlers.set('/simple/bad-json/', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.pypi.simple.v1+json' });
      res.end('{"meta": {"api-version": "1.0"}, "files": [{"filename": ');
    });
    up.handlers.set('/simple/wrong-type/', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end('PK\u0003\u0004');
    });
    up.handlers.set('/simple/to-file/', (_req, res) => {
      res.writeHead(302, { location: 'file:///etc/passwd' });
      res.end();
    });
    up.handlers.set('/simple/error/', (_req, res) => {
      res.writeHead(500);
      res.end('boom');
    });
    up.add('prompt', await wheel(work, 'prompt', '1.0'));
    up.handlers.set('/simple/drip/', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      const t = setInterval(() => res.write('<'), 100);
      res.on('close', () => clearInterval(t));
    });
    // Files that stall or break off: listed with the right sha256, never delivered whole.
    for (const [name, behaviour] of [
      ['stall', 'stall'],
      ['cut', 'cut'],
    ] as const) {
      const w = await wheel(work, name, '1.0');
      up.add(name, w);
      up.handlers.set(`/files/${w.filename}`, (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': w.bytes.length });
        res.write(w.bytes.subarray(0, 100));
        if (behaviour === 'cut') setTimeout(() => res.write(w.bytes.subarray(100, 200), () => setTimeout(() => res.destroy(), 50)), 50);
      });
    }
    await up.start();
    proxy = await new Proxy(
      makeConfig({ roots: [path.join(work, 'root')], logLevel: 'info', upstream: `${up.url}/simple/`, upstreamCache: path.join(work, 'cache'), upstreamTimeout: 3 }),
    ).start();
  });

  after(async () => {
    await proxy?.close();
    await up.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('answers huge, unparsable, mistyped and redirected-to-file:// pages with a 502 naming the problem', async () => {
    for (const [name, reason] of [
      ['huge', /larger than/],
      ['bad-json', /does not parse/],
      ['wrong-type', /Content-Type/],
      ['to-file', /file: URL/],
      ['error', /answered 500/],
    ] as const) {
      const r = await request(proxy.running.url, `/simple/${name}/`);
      expect(r.status, name).to.equal(502);
      expect(r.body.toString(), name).to.match(reason);
    }
  });

  it('parses broken HTML defensively: keeps the usable http(s) links, drops the rest', async () => {
    const j = (await (await fetch(`${proxy.index}broken/`, { headers: { accept: JSON_V1 } })).json()) as ProjectJson;
    expect(j.files.map((f) => f.filename)).to.deep.equal([good.filename]);
    const r = await request(proxy.running.url, `/packages/~upstream/broken/${good.filename}`);
    expect(r.status).to.equal(200);
    expect(sha256(r.body)).to.equal(sha256(good.bytes));
  });

  it('gives up on a slow-drip upstream with a 504 after --upstream-timeout, and keeps serving', async () => {
    const t0 = Date.now();
    const r = await request(proxy.running.url, '/simple/drip/');
    expect(r.status).to.equal(504);
    expect(Date.now() - t0).to.be.below(6_000);
    const health = await fetch(`${proxy.running.url}/health`);
    expect(health.status).to.equal(200);
    // One slow (or hostile) page does not take the upstream down for the other projects: a
    // project never asked for before is fetched at once.
    const other = await request(proxy.running.url, '/simple/prompt/');
    expect(other.status, other.body.toString()).to.equal(200);
  });

  it('answers a file that stalls with a 504 after --upstream-timeout, and breaks off the download of one that is cut', async () => {
    const t0 = Date.now();
    const stalled = await request(proxy.running.url, '/packages/~upstream/stall/stall-1.0-py3-none-any.whl');
    // Nothing was passed on yet (the last chunk is always held back): a clean 504.
    expect(stalled.status).to.equal(504);
    expect(stalled.headers['content-type']).to.match(/^text\/plain/);
    expect(Date.now() - t0).to.be.within(2_500, 8_000);
    const cut = await request(proxy.running.url, '/packages/~upstream/cut/cut-1.0-py3-none-any.whl').then(
      (r) => ({ status: r.status, length: r.body.length }),
      (err: Error) => ({ error: err.message }),
    );
    if ('status' in cut) expect(cut.status === 502 || cut.length < 200, JSON.stringify(cut)).to.equal(true);
    expect(await cachedBlobs(path.join(work, 'cache'))).to.deep.equal([sha256(good.bytes)]);
    expect((await request(proxy.running.url, '/health')).status).to.equal(200);
  });

  it('-a download,list guards proxied pages and files too', async () => {
    const pw = path.join(work, 'htpasswd');
    await fsp.writeFile(pw, `u:${await hashPassword('p', 4)}\n`);
    const guarded = await new Proxy(
      makeConfig({
        roots: [path.join(work, 'root')],
        upstream: `${up.url}/simple/`,
        upstreamCache: path.join(work, 'cache'),
        passwords: pw,
        authenticate: new Set(['update', 'download', 'list']),
      }),
    ).start();
    try {
      const fileUrl = `/packages/~upstream/good/${good.filename}`;
      expect((await request(guarded.running.url, '/simple/good/')).status).to.equal(401);
      expect((await request(guarded.running.url, fileUrl)).status).to.equal(401);
      const auth = { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` };
      expect((await request(guarded.running.url, '/simple/good/', { headers: auth })).status).to.equal(200);
      const ok = await request(guarded.running.url, fileUrl, { headers: auth });
      expect(ok.status).to.equal(200);
      expect(createHash('sha256').update(ok.body).digest('hex')).to.equal(sha256(good.bytes));
    } finally {
      await guarded.close();
    }
  });
});
