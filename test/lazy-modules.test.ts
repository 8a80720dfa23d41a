// Start-up cost (issue 13): a server with local roots does not load what it may never need. The
// AWS SDK (S3 roots), the README renderer (markdown-it, sanitize-html, postcss), prom-client
// (/metrics), multer/busboy (uploads), htmlparser2 (--upstream), bcryptjs and hash-wasm load on
// first use. The real CLI runs with a preload that lists every module the process has
// loaded (CommonJS: require.cache; ESM: a resolve hook) when it gets SIGUSR2. The same server then
// takes its first upload, shows its first README and answers its first /metrics: each works the
// first time, the counters include what happened before, and the list shows the modules loaded.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EXAMPLE_FILES } from './helpers/example.js';
import { copyExample, spawnServer, tempDir, waitHealthy, type Spawned } from './helpers/server.js';
import { eventually, multipart, post, pyArchive, twineFields } from './helpers/upload.js';

/** Runs in the server (main thread only): on SIGUSR2, every loaded module's path or URL into $LAZY_MODULES_OUT. */
const PRELOAD = `
import { createRequire, register } from 'node:module';
import { writeFileSync } from 'node:fs';
import { isMainThread, MessageChannel } from 'node:worker_threads';
if (isMainThread) {
  const seen = new Set();
  const { port1, port2 } = new MessageChannel();
  port1.on('message', (url) => seen.add(url));
  port1.unref();
  const hooks = 'let port; export function initialize(d) { port = d.port; } export async function resolve(s, c, next) { const r = await next(s, c); port.postMessage(r.url); return r; }';
  register('data:text/javascript,' + encodeURIComponent(hooks), { data: { port: port2 }, transferList: [port2] });
  const cache = createRequire(import.meta.url).cache;
  process.on('SIGUSR2', () => writeFileSync(process.env.LAZY_MODULES_OUT, JSON.stringify([...seen, ...Object.keys(cache)])));
}
`;

/**
 * What a local-directory server should not load before it is asked for it. (tar-stream is not
 * checked: the UI reads the summary of each project's latest release in the background, and the
 * example has an sdist-only project.)
 */
const LAZY = ['@aws-sdk', '@smithy', 'sanitize-html', 'markdown-it', 'postcss', 'htmlparser2', 'prom-client', 'multer', 'busboy', 'bcryptjs', 'hash-wasm'];

function packagesIn(modules: string[]): Set<string> {
  const out = new Set<string>();
  for (const m of modules) {
    const hit = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(decodeURIComponent(m));
    if (hit) out.add(hit[1]);
  }
  return out;
}

function lazyLoaded(modules: string[]): string[] {
  const pkgs = [...packagesIn(modules)];
  return LAZY.filter((name) => pkgs.some((p) => p === name || p.startsWith(`${name}/`)));
}

describe('start-up loads the heavy modules on first use only', function () {
  this.timeout(60_000);
  let srv: Spawned;
  let root: string;
  let work: string;
  let out: string;

  /** The modules the server has loaded so far. */
  async function loadedModules(): Promise<string[]> {
    await fsp.rm(out, { force: true });
    srv.proc.kill('SIGUSR2');
    expect(await eventually(() => fsp.access(out).then(() => true, () => false), 5000)).to.equal(true);
    return JSON.parse(await fsp.readFile(out, 'utf8')) as string[];
  }

  before(async function () {
    root = await copyExample();
    work = await tempDir('pypi-lite-lazy-');
    out = path.join(work, 'modules.json');
    const preload = path.join(work, 'preload.mjs');
    await fsp.writeFile(preload, PRELOAD);
    const nodeOptions = `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(preload).href}`.trim();
    srv = await spawnServer(['-a', '.', '-P', '.', '--disable-fallback', root], { env: { NODE_OPTIONS: nodeOptions, LAZY_MODULES_OUT: out } });
    await waitHealthy(srv.url, { idle: true });
  });
  after(async () => {
    await srv?.stop();
    await fsp.rm(work, { recursive: true, force: true });
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('serves /health, Simple pages, the JSON API, downloads and the home page without them', async function () {
    const file = EXAMPLE_FILES[0];
    for (const p of ['/health', `/simple/${file.project}/`, `/pypi/${file.project}/json`, `/packages/${file.relPath}`, '/']) {
      const r = await fetch(`${srv.url}${p}`);
      expect(r.status, p).to.equal(200);
      await r.arrayBuffer();
    }
    const modules = await loadedModules();
    // The list is real: the modules every request needs are in it.
    expect([...packagesIn(modules)]).to.include.members(['express', 'pino']);
    expect(lazyLoaded(modules)).to.deep.equal([]);
  });

  it('then takes its first upload, renders its first README and answers its first /metrics with every count since the start', async function () {
    const name = 'lazy-first';
    const filename = 'lazy_first-1.0-py3-none-any.whl';
    const pkginfo = 'Metadata-Version: 2.1\nName: lazy-first\nVersion: 1.0\nDescription-Content-Type: text/markdown\n\n# Lazy *first*\n\n<script>x()</script>\n';
    const bytes = await pyArchive(work, filename, { kind: 'wheel', name, version: '1.0', pkginfo });
    const up = await post(`${srv.url}/`, multipart(twineFields(name, '1.0', filename, bytes), { filename, bytes }));
    expect(up.status, up.body).to.equal(200);
    expect(up.body).to.equal(`OK: ${filename}\n`);

    const page = await fetch(`${srv.url}/project/${name}/`);
    expect(page.status).to.equal(200);
    const html = await page.text();
    expect(html).to.contain('<h2>Lazy <em>first</em></h2>');
    expect(html).to.not.contain('<script>x()');

    const r = await fetch(`${srv.url}/metrics`);
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.equal('text/plain; version=0.0.4; charset=utf-8');
    const text = await r.text();
    // Counted before prom-client was loaded: one Simple page (previous test), the upload and its bytes.
    expect(text).to.match(/^pypi_lite_http_requests_total\{route="simple",method="GET",status="200"\} 1$/m);
    expect(text).to.match(/^pypi_lite_uploads_total\{result="accepted"\} 1$/m);
    expect(text).to.match(new RegExp(`^pypi_lite_upload_bytes_total ${bytes.length}$`, 'm'));
    expect(text).to.match(/^pypi_lite_http_request_duration_seconds_count\{route="simple"\} 1$/m);
    // The GC pauses of the start (loading, indexing) are in the first answer, under prom-client's name.
    const gcCounts = [...text.matchAll(/^pypi_lite_nodejs_gc_duration_seconds_count\{kind="[a-z]+"\} (\d+)$/gm)].map((m) => Number(m[1]));
    expect(gcCounts.reduce((a, b) => a + b, 0)).to.be.greaterThan(0);
    // So is the event-loop delay since the start (an empty window would read max 0, mean NaN).
    expect(Number(/^pypi_lite_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1])).to.be.greaterThan(0);
    expect(Number(/^pypi_lite_nodejs_eventloop_lag_mean_seconds (\S+)$/m.exec(text)?.[1])).to.be.greaterThan(0);
    expect(text).to.match(/^pypi_lite_process_cpu_seconds_total /m);
    expect(text).to.match(/^pypi_lite_catalog_files \d+$/m);

    const modules = await loadedModules();
    expect(lazyLoaded(modules)).to.include.members(['multer', 'busboy', 'markdown-it', 'sanitize-html', 'prom-client']);
    // (htmlparser2 came with sanitize-html.) Still no S3 SDK: there is no S3 root.
    expect(lazyLoaded(modules)).to.not.include('@aws-sdk');
  });
});
