// Operations and hardening, against the real program: /health, /metrics, the welcome page,
// request logs, security headers and HTML escaping, request limits, graceful shutdown.

import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { copyExample, run, spawnServer, tempDir, waitHealthy, type Spawned } from './helpers/server.js';

/** Write a wheel with the given METADATA using Python's zipfile (independent of our code). */
async function writeWheel(dir: string, filename: string, metadata: string): Promise<string> {
  const target = path.join(dir, filename);
  const distInfo = filename.split('-').slice(0, 2).join('-') + '.dist-info';
  const script = `import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr(sys.argv[2] + '/METADATA', sys.argv[3])
    z.writestr(sys.argv[2] + '/WHEEL', 'Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')
    z.writestr(sys.argv[2] + '/RECORD', '')
`;
  const r = await run('/usr/bin/python3', ['-c', script, target, distInfo, metadata]);
  if (r.code !== 0) throw new Error(r.stderr);
  return target;
}

function rawRequest(port: number, text: string, waitMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
    s.write(text);
    setTimeout(() => s.destroy(), waitMs);
  });
}

describe('operations', function () {
  this.timeout(60_000);
  let srv: Spawned;
  let root: string;

  before(async function () {
    root = await copyExample();
    await writeWheel(
      root,
      'evil_names-1.0-py3-none-any.whl',
      'Metadata-Version: 2.1\nName: evil-names\nVersion: 1.0\nRequires-Python: >=3.8"><script>alert(\'x\')</script>&amp;\nSummary: <b>bold</b>\n\nbody\n',
    );
    await fsp.writeFile(path.join(root, 'yanked.txt'), 'evil-names==1.0 "quoted" <script>alert(1)</script> & more\n');
    srv = await spawnServer(['--disable-fallback', '--no-ui', '--headers-timeout', '600', root]);
    await waitHealthy(srv.url, { idle: true });
  });
  after(async () => srv.stop());

  it('GET /health reports status, counts and the hashing backlog', async function () {
    const r = await fetch(`${srv.url}/health`);
    expect(r.status).to.equal(200);
    const body = (await r.json()) as Record<string, unknown>;
    expect(body).to.deep.equal({ status: 'ok', projects: 5, files: 12, hashing: 0 });
  });

  it('GET /metrics speaks the Prometheus text format with request, catalog and upload metrics', async function () {
    await fetch(`${srv.url}/simple/pypi-lite-demo/`);
    const r = await fetch(`${srv.url}/metrics`);
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    expect(text).to.match(/pypi_lite_http_requests_total\{route="simple",method="GET",status="200"\} \d+/);
    expect(text).to.match(/pypi_lite_http_request_duration_seconds_bucket\{le="0\.01",route="simple"\} \d+/);
    expect(text).to.match(/^pypi_lite_catalog_files 12$/m);
    expect(text).to.match(/^pypi_lite_catalog_projects 5$/m);
    expect(text).to.match(/^pypi_lite_hashing_backlog 0$/m);
    expect(text).to.contain('pypi_lite_uploads_total');
  });

  it('the welcome page (--no-ui) shows the exact pip, uv and twine lines for the URL the visitor used', async function () {
    const r = await fetch(`${srv.url}/`);
    expect(r.status).to.equal(200);
    const html = await r.text();
    expect(html).to.contain(`pip install --extra-index-url ${srv.url}/simple/ PACKAGE`);
    expect(html).to.contain(`twine upload --repository-url ${srv.url}/ -u USER dist/*`);
    expect(html).to.contain(`uv pip install --extra-index-url ${srv.url}/simple/ PACKAGE`);
    expect(html).to.contain('repository = ' + srv.url + '/');
    expect(html).to.match(/serving 5 projects \(12 files\)/);
    const viaName = await rawRequest(srv.port, 'GET / HTTP/1.1\r\nHost: pkgs.example.com:8080\r\nConnection: close\r\n\r\n');
    expect(viaName).to.contain('pip install --extra-index-url http://pkgs.example.com:8080/simple/ PACKAGE');
    const hostile = await rawRequest(srv.port, 'GET / HTTP/1.1\r\nHost: "><script>x</script>\r\nConnection: close\r\n\r\n');
    expect(hostile).to.not.contain('<script>x');
  });

  it('escapes every metadata value on HTML pages and sends CSP and nosniff', async function () {
    const r = await fetch(`${srv.url}/simple/evil-names/`);
    const html = await r.text();
    expect(html).to.not.contain('<script>');
    expect(html).to.contain('data-requires-python="&gt;=3.8&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;amp;"');
    expect(html).to.contain('data-yanked="&quot;quoted&quot; &lt;script&gt;alert(1)&lt;/script&gt; &amp; more"');
    expect(r.headers.get('content-security-policy')).to.contain("default-src 'none'");
    expect(r.headers.get('x-content-type-options')).to.equal('nosniff');
    const j = (await (await fetch(`${srv.url}/simple/evil-names/`, { headers: { Accept: 'application/vnd.pypi.simple.v1+json' } })).json()) as {
      files: { 'requires-python': string; yanked: string }[];
    };
    expect(j.files[0]['requires-python']).to.equal('>=3.8"><script>alert(\'x\')</script>&amp;');
    expect(j.files[0].yanked).to.equal('"quoted" <script>alert(1)</script> & more');
  });

  it('serves downloads so that browsers never render them', async function () {
    const r = await fetch(`${srv.url}/packages/evil_names-1.0-py3-none-any.whl`);
    expect(r.headers.get('content-type')).to.equal('application/octet-stream');
    expect(r.headers.get('content-disposition')).to.match(/^attachment; filename="evil_names-1\.0-py3-none-any\.whl"$/);
    expect(r.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(r.headers.get('content-encoding')).to.equal(null);
  });

  it('logs one JSON line per request with method, path, status, bytes and ms, and no secrets', async function () {
    const since = Date.now();
    await fetch(`${srv.url}/simple/pypi-lite-demo/?token=SECRET-QUERY`, { headers: { Authorization: 'Basic ' + Buffer.from('bob:SECRET-PASS').toString('base64') } });
    const [line] = await srv.waitForLogs((l) => l.msg === 'request' && l.path === '/simple/pypi-lite-demo/' && typeof l.time === 'number' && l.time >= since);
    expect(line).to.include({ method: 'GET', status: 200 });
    expect(line.bytes).to.be.a('number').greaterThan(100);
    expect(line.ms).to.be.a('number');
    expect(line.reqId).to.be.a('string');
    expect(srv.output()).to.not.contain('SECRET-PASS');
    expect(srv.output()).to.not.contain('SECRET-QUERY');
    expect(srv.output()).to.not.contain(Buffer.from('bob:SECRET-PASS').toString('base64'));
  });

  it('refuses oversized request headers with 431 and keeps serving', async function () {
    const reply = await rawRequest(srv.port, `GET /simple/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(reply).to.match(/^HTTP\/1\.1 431/);
    expect((await fetch(`${srv.url}/simple/`)).status).to.equal(200);
  });

  it('drops a slowloris client that never finishes its headers, while serving others', async function () {
    const started = Date.now();
    const closed = new Promise<number>((resolve) => {
      const s = net.connect(srv.port, '127.0.0.1', () => s.write('GET /simple/ HTTP/1.1\r\nHost: x\r\n'));
      const drip = setInterval(() => s.writable && s.write('X-Drip: 1\r\n'), 100);
      s.on('data', () => {});
      s.on('close', () => {
        clearInterval(drip);
        resolve(Date.now() - started);
      });
      s.on('error', () => {});
      setTimeout(() => s.destroy(), 10_000);
    });
    expect((await fetch(`${srv.url}/simple/`)).status).to.equal(200);
    expect(await closed).to.be.lessThan(5000);
  });
});

describe('graceful shutdown', function () {
  this.timeout(60_000);

  it('lets an in-flight download finish on SIGTERM, then exits 0', async function () {
    const root = await tempDir('pypi-lite-shutdown-');
    const big = path.join(root, 'big_file-1.0-py3-none-any.whl');
    const bytes = Buffer.alloc(32 * 1024 * 1024, 7);
    await fsp.writeFile(big, bytes);
    const srv = await spawnServer(['--disable-fallback', root]);
    await waitHealthy(srv.url, { idle: true });
    const exited = new Promise<number | null>((resolve) => srv.proc.once('exit', (c) => resolve(c)));
    const received = await new Promise<{ hash: string; length: number }>((resolve, reject) => {
      http.get(`${srv.url}/packages/big_file-1.0-py3-none-any.whl`, (res) => {
        const h = createHash('sha256');
        let length = 0;
        let signalled = false;
        res.on('data', (d: Buffer) => {
          h.update(d);
          length += d.length;
          if (!signalled) {
            signalled = true;
            srv.proc.kill('SIGTERM');
            // Read slowly for a while so that the download is still running during shutdown.
            res.pause();
            setTimeout(() => res.resume(), 500);
          }
        });
        res.on('end', () => resolve({ hash: h.digest('hex'), length }));
        res.on('error', reject);
      });
    });
    const code = await exited;
    expect(received.length).to.equal(bytes.length);
    expect(received.hash).to.equal(createHash('sha256').update(bytes).digest('hex'));
    expect(code).to.equal(0);
    const leftovers = (await fsp.readdir(root)).filter((n) => n.startsWith('.pypi-lite-upload-'));
    expect(leftovers).to.deep.equal([]);
  });
});
