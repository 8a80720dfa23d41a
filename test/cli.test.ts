import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BIN, EXAMPLE, REPO, copyExample, run, spawnServer, tempDir, waitHealthy, type RunResult, type Spawned } from './helpers/server.js';
import { JSON_V1, request, sha256, type ProjectJson } from './helpers/http.js';

/** `pypi-lite ...` with the test's environment plus `env`. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeoutMs: 30_000 });
}

function show(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** A port nobody listens on right now. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** One short error line, no stack trace. */
function expectOneLineError(r: RunResult, mention: RegExp): void {
  expect(r.code, show(r)).to.equal(2);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, show(r)).to.have.length(1);
  expect(lines[0]).to.match(mention);
  expect(r.stderr).not.to.match(/\n\s+at /);
  expect(r.stderr).not.to.match(/Error:|node:internal|\.js:\d+/);
}

const SERVE_OPTIONS: [string, string | null][] = [
  ['--port', 'PYPI_LITE_PORT'],
  ['--host', 'PYPI_LITE_HOST'],
  ['--fallback-url', 'PYPI_LITE_FALLBACK_URL'],
  ['--disable-fallback', 'PYPI_LITE_DISABLE_FALLBACK'],
  ['--base-url', 'PYPI_LITE_BASE_URL'],
  ['--passwords', 'PYPI_LITE_PASSWORDS'],
  ['--authenticate', 'PYPI_LITE_AUTHENTICATE'],
  ['--overwrite', 'PYPI_LITE_OVERWRITE'],
  ['--max-upload-size', 'PYPI_LITE_MAX_UPLOAD_SIZE'],
  ['--cache-dir', 'PYPI_LITE_CACHE_DIR'],
  ['--log-level', 'PYPI_LITE_LOG_LEVEL'],
  ['--log-format', 'PYPI_LITE_LOG_FORMAT'],
  ['--health-endpoint', 'PYPI_LITE_HEALTH_ENDPOINT'],
  ['--no-metrics', 'PYPI_LITE_NO_METRICS'],
  ['--no-ui', 'PYPI_LITE_NO_UI'],
  ['--workers', 'PYPI_LITE_WORKERS'],
  ['--trust-proxy', 'PYPI_LITE_TRUST_PROXY'],
  ['--rescan-interval', 'PYPI_LITE_RESCAN_INTERVAL'],
  ['--poll', 'PYPI_LITE_POLL'],
  ['--poll-interval', 'PYPI_LITE_POLL_INTERVAL'],
  ['--upstream', 'PYPI_LITE_UPSTREAM'],
  ['--upstream-ttl', 'PYPI_LITE_UPSTREAM_TTL'],
  ['--upstream-timeout', 'PYPI_LITE_UPSTREAM_TIMEOUT'],
  ['--upstream-cache', 'PYPI_LITE_UPSTREAM_CACHE'],
  ['--upstream-cache-max', 'PYPI_LITE_UPSTREAM_CACHE_MAX'],
  ['--upstream-merge', 'PYPI_LITE_UPSTREAM_MERGE'],
  ['--help', null],
];

describe('the pypi-lite command line', function () {
  this.timeout(60_000);
  const temps: string[] = [];
  const servers: Spawned[] = [];
  const tmp = async (prefix: string) => {
    const d = await tempDir(prefix);
    temps.push(d);
    return d;
  };
  /** A fresh copy of the example for one server (servers write a cache file into their root). */
  const fresh = async () => {
    const d = await copyExample();
    temps.push(d);
    return d;
  };

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  after(async () => {
    for (const d of temps) await fsp.rm(d, { recursive: true, force: true });
  });

  // The CLI takes a second or two to start on a small machine: the short runs start at once.
  const quick = new Map<string, Promise<RunResult>>();
  const started = (key: string) => quick.get(key)!;
  let missingDir: string;
  before(async () => {
    missingDir = path.join(await tmp('pypi-lite-cli-'), 'nope');
    const runs: [string, string[]][] = [
      ['help', ['--help']],
      ['serve-help', ['serve', '--help']],
      ['version', ['--version']],
      ['V', ['-V']],
      ['missing', ['serve', '-p', '0', '-H', '127.0.0.1', missingDir]],
      ['file', ['serve', '-p', '0', '-H', '127.0.0.1', path.join(EXAMPLE, 'README.md')]],
      ['one-bad', ['serve', '-p', '0', '-H', '127.0.0.1', EXAMPLE, '/nonexistent-pypi-lite-root']],
      ['unknown-option', ['serve', '--no-such-option', EXAMPLE]],
    ];
    for (const [key, args] of runs) quick.set(key, cli(args));
  });

  describe('help and version', () => {
    it('pypi-lite --help lists the commands', async () => {
      const r = await started('help');
      expect(r.code, show(r)).to.equal(0);
      for (const c of ['serve', 'passwd', 'yank', 'unyank']) expect(r.stdout, c).to.match(new RegExp(`^\\s+${c}\\b`, 'm'));
    });

    it('pypi-lite serve --help lists every option and its environment variable', async () => {
      const r = await started('serve-help');
      expect(r.code, show(r)).to.equal(0);
      const text = r.stdout.replace(/\s+/g, ' ');
      for (const [opt, env] of SERVE_OPTIONS) {
        expect(r.stdout, opt).to.match(new RegExp(`(^|[\\s,])${opt}\\b`, 'm'));
        if (env) expect(text, env).to.include(env);
      }
    });

    it('pypi-lite serve --help says that writes need a user with -P, whatever -a says, and how to allow anonymous ones', async () => {
      const text = (await started('serve-help')).stdout.replace(/\s+/g, ' ');
      expect(text).to.include('every write (upload, remove, yank) needs a user whatever -a says');
      expect(text).to.include('"-a . -P ." alone allows anonymous uploads');
      expect(text).to.match(/--trust-proxy <proxies> .*X-Forwarded-For/);
    });

    it('--version prints the version from package.json', async () => {
      const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
      for (const key of ['version', 'V']) {
        const r = await started(key);
        expect(r.code, show(r)).to.equal(0);
        expect(r.stdout.trim()).to.equal(pkg.version);
      }
    });
  });

  describe('usage errors', () => {
    it('a package directory that does not exist: exit 2, one line, no stack trace', async () => {
      const r = await started('missing');
      expect(missingDir).to.match(/nope$/);
      expectOneLineError(r, /nope/);
      expect(r.stdout).not.to.include('serving');
    });

    it('a file given as the package directory: exit 2, one line', async () => {
      const r = await started('file');
      expectOneLineError(r, /README\.md.*not a directory|not a directory.*README\.md/);
    });

    it('one bad root among good ones is still refused', async () => {
      const r = await started('one-bad');
      expectOneLineError(r, /nonexistent-pypi-lite-root/);
    });

    it('an unknown option: exit 2 naming it', async () => {
      const r = await started('unknown-option');
      expect(r.code, show(r)).to.equal(2);
      expect(r.stderr).to.include('--no-such-option');
      expect(r.stderr).not.to.match(/\n\s+at /);
    });
  });

  describe('environment variables', () => {
    // servers started together (each takes a second or two to come up here)
    const named = new Map<string, Spawned>();
    before(async () => {
      const specs: [string, string[], NodeJS.ProcessEnv][] = [
        ['disable=1', [], { PYPI_LITE_DISABLE_FALLBACK: '1' }],
        ['disable=0', [], { PYPI_LITE_DISABLE_FALLBACK: '0' }],
        ['disable=false', [], { PYPI_LITE_DISABLE_FALLBACK: 'false' }],
        ['fallback-env', [], { PYPI_LITE_FALLBACK_URL: 'https://mirror.example/simple/' }],
        ['cli-wins', ['--fallback-url', 'https://cli.example/simple/'], { PYPI_LITE_FALLBACK_URL: 'https://env.example/simple/' }],
      ];
      const roots = await Promise.all(specs.map(() => fresh()));
      const spawned = await Promise.allSettled(specs.map(([, args], i) => spawnServer([...args, roots[i]], { env: specs[i][2], timeoutMs: 60_000 })));
      for (const [i, r] of spawned.entries()) if (r.status === 'fulfilled') named.set(specs[i][0], r.value);
      for (const r of spawned) if (r.status === 'rejected') throw r.reason;
    });
    after(async () => {
      await Promise.all([...named.values()].map((s) => s.stop()));
    });

    const unknownProject = async (key: string) => {
      const res = await fetch(`${named.get(key)!.url}/simple/not-here-at-all/`, { redirect: 'manual' });
      await res.arrayBuffer();
      return res;
    };

    it('PYPI_LITE_PORT and PYPI_LITE_HOST choose where it listens', async () => {
      const port = await freePort();
      const root = await fresh();
      const proc = spawn(process.execPath, [BIN, 'serve', '--disable-fallback', root], {
        env: { ...process.env, PYPI_LITE_PORT: String(port), PYPI_LITE_HOST: '127.0.0.1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      try {
        let out = '';
        proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
        proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const deadline = Date.now() + 20_000;
        while (!out.includes('--index-url') && Date.now() < deadline && proc.exitCode === null) await new Promise((r) => setTimeout(r, 50));
        expect(out).to.include(`http://127.0.0.1:${port}/simple/`);
        await waitHealthy(`http://127.0.0.1:${port}`);
        const res = await fetch(`http://127.0.0.1:${port}/simple/pypi-lite-demo/`, { headers: { accept: JSON_V1 } });
        expect(res.status).to.equal(200);
        await res.arrayBuffer();
      } finally {
        proc.kill('SIGTERM');
        await exited;
      }
    });

    it('PYPI_LITE_DISABLE_FALLBACK=1 answers 404 for unknown projects', async () => {
      expect((await unknownProject('disable=1')).status).to.equal(404);
    });

    it('PYPI_LITE_FALLBACK_URL sets the fallback', async () => {
      const res = await unknownProject('fallback-env');
      expect(res.status).to.equal(303);
      expect(res.headers.get('location')).to.equal('https://mirror.example/simple/not-here-at-all/');
    });

    it('PYPI_LITE_DISABLE_FALLBACK=0 or =false does not disable the fallback', async () => {
      for (const key of ['disable=0', 'disable=false']) {
        const res = await unknownProject(key);
        expect(res.status, `PYPI_LITE_${key.toUpperCase().replace('DISABLE', 'DISABLE_FALLBACK')} turned the fallback off (commander treats any value of a boolean option's env var as true)`).to.equal(303);
      }
    });

    it('a command-line option wins over its environment variable', async () => {
      const res = await unknownProject('cli-wins');
      expect(res.headers.get('location')).to.equal('https://cli.example/simple/not-here-at-all/');
    });
  });

  describe('signals', () => {
    const bySignal = new Map<string, Spawned>();
    before(async () => {
      const [a, b] = await Promise.all([fresh(), fresh()]);
      const [t, i] = await Promise.allSettled([spawnServer(['--disable-fallback', a]), spawnServer(['--disable-fallback', b])]);
      if (t.status === 'fulfilled') bySignal.set('SIGTERM', t.value);
      if (i.status === 'fulfilled') bySignal.set('SIGINT', i.value);
      for (const r of [t, i]) if (r.status === 'rejected') throw r.reason;
    });
    after(async () => {
      await Promise.all([...bySignal.values()].map((s) => s.stop('SIGKILL')));
    });

    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      it(`${signal} stops the server quickly with exit code 0, even with an idle keep-alive connection`, async () => {
        const srv = bySignal.get(signal)!;
        await waitHealthy(srv.url);
        // leave a keep-alive connection open in fetch's pool
        const res = await fetch(`${srv.url}/simple/`);
        await res.text();
        const t0 = Date.now();
        const code = await srv.stop(signal);
        const took = Date.now() - t0;
        expect(code, srv.output().slice(-2000)).to.equal(0);
        // well under the 10 s bound the server gives busy connections at shutdown
        expect(took, `${signal} took ${took} ms`).to.be.lessThan(5_000);
        expect(srv.output()).not.to.match(/\n\s+at /);
      });
    }
  });

  describe('several package directories', () => {
    it('lists the files of every root; the first root wins for a duplicate relative path', async () => {
      const first = await tmp('pypi-lite-root1-');
      const second = await tmp('pypi-lite-root2-');
      const dup = 'pypi_lite_demo-1.0.0-py3-none-any.whl';
      await fsp.copyFile(path.join(EXAMPLE, dup), path.join(first, dup));
      await fsp.copyFile(path.join(EXAMPLE, 'fancy_mixed_name-0.3.1.tar.gz'), path.join(first, 'fancy_mixed_name-0.3.1.tar.gz'));
      const firstBytes = await fsp.readFile(path.join(first, dup));
      // same relative path, different bytes (another wheel): must not be served
      const secondBytes = await fsp.readFile(path.join(EXAMPLE, 'pypi_lite_demo-1.1.0-py3-none-any.whl'));
      await fsp.writeFile(path.join(second, dup), secondBytes);
      expect(sha256(secondBytes)).to.not.equal(sha256(firstBytes));
      await fsp.copyFile(path.join(EXAMPLE, 'pypi_lite_demo-2.0.0-py3-none-any.whl'), path.join(second, 'pypi_lite_demo-2.0.0-py3-none-any.whl'));
      await fsp.mkdir(path.join(second, 'legacy'));
      await fsp.copyFile(path.join(EXAMPLE, 'sdist-only-tool-0.9.tar.gz'), path.join(second, 'legacy', 'sdist-only-tool-0.9.tar.gz'));

      const srv = await spawnServer(['--disable-fallback', first, second]);
      servers.push(srv);
      await waitHealthy(srv.url, { idle: true });

      const page = async (p: string) => (await (await fetch(`${srv.url}/simple/${p}/`, { headers: { accept: JSON_V1 } })).json()) as ProjectJson;
      const demo = await page('pypi-lite-demo');
      expect(demo.files.map((f) => f.filename).sort()).to.deep.equal([dup, 'pypi_lite_demo-2.0.0-py3-none-any.whl']);
      expect(demo.files.find((f) => f.filename === dup)!.hashes.sha256).to.equal(sha256(firstBytes));
      expect((await page('fancy-mixed-name')).files.map((f) => f.filename)).to.deep.equal(['fancy_mixed_name-0.3.1.tar.gz']);
      expect((await page('sdist-only-tool')).files.map((f) => f.filename)).to.deep.equal(['sdist-only-tool-0.9.tar.gz']);

      const got = await request(srv.url, `/packages/${dup}`);
      expect(got.status).to.equal(200);
      expect(got.body.equals(firstBytes), "the first root's file is served").to.equal(true);
      const fromSecond = await request(srv.url, '/packages/legacy/sdist-only-tool-0.9.tar.gz');
      expect(fromSecond.status).to.equal(200);
      expect(fromSecond.body.equals(await fsp.readFile(path.join(EXAMPLE, 'sdist-only-tool-0.9.tar.gz')))).to.equal(true);
    });
  });

});
