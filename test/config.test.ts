// One source of the `serve` defaults (issue 10): lib/core/config.ts's SERVE_OPTIONS declares every
// option's flags, default, environment variable and parser; the command line is built from it.
// These tests parse `pypi-lite serve ... ROOT` in-process (nothing is started) and check the
// resulting Config.

import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks';
import type { Command } from 'commander';
import { buildConfig, buildProgram } from '../lib/cli.js';
import { isSwitch, SERVE_OPTIONS, type Config } from '../lib/core/config.js';
import { growingPercentFor, HEAP_GROWING_PERCENT, HeapTuning, LARGE_HEAP, STREAM_GROWING_PERCENT } from '../lib/core/heap.js';
import { makeConfig } from './helpers/config.js';
import { tempDir } from './helpers/server.js';

describe('serve options: one table of defaults, variables and parsers', () => {
  let root: string;
  const saved = { ...process.env };

  before(async () => {
    root = await tempDir('pypi-lite-config-');
  });
  after(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });
  afterEach(() => {
    for (const spec of Object.values(SERVE_OPTIONS)) {
      if (saved[spec.env] === undefined) delete process.env[spec.env];
      else process.env[spec.env] = saved[spec.env];
    }
  });

  /** The Config of `pypi-lite serve ...args ROOT` with these environment variables. */
  async function configFor(args: string[], env: Record<string, string> = {}): Promise<Config> {
    for (const spec of Object.values(SERVE_OPTIONS)) delete process.env[spec.env];
    Object.assign(process.env, env);
    const program = buildProgram();
    const serve = program.commands.find((c: Command) => c.name() === 'serve')!;
    for (const c of [program, serve]) c.configureOutput({ writeErr: () => {}, writeOut: () => {}, outputError: () => {} });
    let config: Config | undefined;
    serve.action(async (roots: string[], o: Parameters<typeof buildConfig>[1]) => {
      config = await buildConfig(roots, o);
    });
    await program.parseAsync(['node', 'pypi-lite', 'serve', ...args, root]);
    return config!;
  }

  it('without options or variables: the documented defaults', async () => {
    const c = await configFor([]);
    expect({ ...c, authenticate: [...c.authenticate] }).to.deep.include({
      port: 8080,
      host: '0.0.0.0',
      fallbackUrl: 'https://pypi.org/simple/',
      basePath: '',
      baseOrigin: null,
      logLevel: 'info',
      logFormat: 'json',
      cacheDir: null,
      passwords: null,
      authenticate: ['update'],
      anonymousUploads: false,
      trustProxy: false,
      overwrite: false,
      maxUploadSize: 1024 ** 3,
      healthEndpoint: '/health',
      metrics: true,
      ui: true,
      headersTimeoutMs: 20_000,
      rescanInterval: 300,
      poll: null,
    });
  });

  it("the tests' makeConfig is the command line's defaults, except port, host, fallback, log level and workers", async () => {
    const cli = await configFor([]);
    const test = makeConfig({ roots: cli.roots });
    expect({ ...test, port: 8080, host: '0.0.0.0', fallbackUrl: 'https://pypi.org/simple/', logLevel: 'info', workers: cli.workers }).to.deep.equal(cli);
    expect([test.port, test.host, test.fallbackUrl, test.logLevel, test.workers]).to.deep.equal([0, '127.0.0.1', null, 'silent', 2]);
  });

  it('every value option is read from its PYPI_LITE_* variable, through the same parser as the option', async () => {
    const c = await configFor([], {
      PYPI_LITE_PORT: '9000',
      PYPI_LITE_HOST: '127.0.0.2',
      PYPI_LITE_FALLBACK_URL: 'https://mirror.example/simple/',
      PYPI_LITE_BASE_URL: 'https://box.example/pypi/',
      PYPI_LITE_PASSWORDS: '.',
      PYPI_LITE_AUTHENTICATE: '.',
      PYPI_LITE_TRUST_PROXY: 'loopback',
      PYPI_LITE_MAX_UPLOAD_SIZE: '5M',
      PYPI_LITE_CACHE_DIR: root,
      PYPI_LITE_LOG_LEVEL: 'warn',
      PYPI_LITE_LOG_FORMAT: 'pretty',
      PYPI_LITE_HEALTH_ENDPOINT: '/up',
      PYPI_LITE_HEADERS_TIMEOUT: '1500',
      PYPI_LITE_WORKERS: '3',
      PYPI_LITE_RESCAN_INTERVAL: '60',
      PYPI_LITE_POLL_INTERVAL: '7',
    });
    expect({ ...c, authenticate: [...c.authenticate] }).to.deep.include({
      port: 9000,
      host: '127.0.0.2',
      fallbackUrl: 'https://mirror.example/simple/',
      basePath: '/pypi',
      baseOrigin: 'https://box.example',
      passwords: null,
      authenticate: [],
      anonymousUploads: true,
      trustProxy: ['loopback'],
      maxUploadSize: 5 * 1024 ** 2,
      cacheDir: root,
      logLevel: 'warn',
      logFormat: 'pretty',
      healthEndpoint: '/up',
      headersTimeoutMs: 1500,
      workers: 3,
      rescanInterval: 60,
    });
    // a value that the option refuses is refused from the variable too
    let err: unknown;
    try {
      await configFor([], { PYPI_LITE_WORKERS: '99' });
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string } | undefined)?.code).to.equal('commander.invalidArgument');
    expect((err as Error).message).to.include('PYPI_LITE_WORKERS').and.include('--workers must be an integer from 1 to 64');
  });

  const switches: [string, keyof Config, unknown, unknown][] = [
    ['--disable-fallback', 'fallbackUrl', null, 'https://pypi.org/simple/'],
    ['--overwrite', 'overwrite', true, false],
    ['--no-metrics', 'metrics', false, true],
    ['--no-ui', 'ui', false, true],
    ['--poll', 'poll', 5, null],
    ['--s3-path-style', 's3PathStyle', true, false],
    ['--s3-redirect', 's3Redirect', 300, null],
  ];

  it('the table lists exactly these switches', () => {
    expect(Object.values(SERVE_OPTIONS).filter(isSwitch).map((s) => s.flags)).to.deep.equal(switches.map(([flag]) => flag));
  });

  for (const [flag, key, on, off] of switches) {
    const spec = Object.values(SERVE_OPTIONS).find((s) => s.flags === flag)!;
    it(`${flag}: ${spec.env}=1/true/on turns it on, =0/false/off or empty does not, the command line wins`, async () => {
      expect((await configFor([flag]))[key], flag).to.deep.equal(on);
      for (const v of ['1', 'true', 'on', 'YES']) expect((await configFor([], { [spec.env]: v }))[key], `${spec.env}=${v}`).to.deep.equal(on);
      for (const v of ['0', 'false', 'off', 'no', '']) expect((await configFor([], { [spec.env]: v }))[key], `${spec.env}=${v}`).to.deep.equal(off);
      expect((await configFor([flag], { [spec.env]: '0' }))[key], `${flag} with ${spec.env}=0`).to.deep.equal(on);
      let err: unknown;
      try {
        await configFor([], { [spec.env]: 'maybe' });
      } catch (e) {
        err = e;
      }
      expect((err as Error | undefined)?.message).to.equal(`${spec.env} must be 1/true/yes/on or 0/false/no/off, not "maybe"`);
    });
  }
});

describe('serve: V8 heap growth', () => {
  /** Forced major collections while `during` runs (and 100 ms after). */
  async function forcedMajors(during: () => Promise<void> | void): Promise<number> {
    let n = 0;
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const d = (e as unknown as { detail: { kind: number; flags: number } }).detail;
        if (d.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR && (d.flags & perfConstants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0) n++;
      }
    });
    observer.observe({ entryTypes: ['gc'] });
    try {
      await during();
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      observer.disconnect();
    }
    return n;
  }
  const small = () => 50 * 1024 * 1024;
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

  it('is kept tight for a small heap, left to V8 for a large one, and not set when node was given its own', () => {
    expect(growingPercentFor(50 * 1024 * 1024), '50 MB').to.equal(HEAP_GROWING_PERCENT);
    expect(growingPercentFor(LARGE_HEAP - 1)).to.equal(HEAP_GROWING_PERCENT);
    expect(growingPercentFor(LARGE_HEAP), 'V8 chooses').to.equal(0);
    expect(new HeapTuning({ execArgv: ['--heap-growing-percent=80'], nodeOptions: '' }).enabled, 'node --heap-growing-percent=80').to.equal(false);
    expect(new HeapTuning({ execArgv: ['--heap_growing_percent=80'], nodeOptions: '' }).enabled, 'underscore spelling').to.equal(false);
    expect(new HeapTuning({ execArgv: [], nodeOptions: '--max-old-space-size=512 --heap-growing-percent=80' }).enabled, 'in NODE_OPTIONS').to.equal(false);
    const tuning = new HeapTuning({ execArgv: ['--max-old-space-size=512'], nodeOptions: '' });
    expect(tuning.enabled, 'other flags only').to.equal(true);
    tuning.loaded();
    tuning.stop();
  });

  it('collects once when the catalog is loaded with a small heap, so that the tight growth applies from then on', async () => {
    // V8 computes the next limit at a full collection: without one, the limit the load's last
    // collection set (V8's own, up to 4x) held, and a cold start's heap could triple first.
    const forcedMajor = (tuning: HeapTuning) =>
      forcedMajors(() => {
        tuning.loaded();
        tuning.stop();
      });
    expect(await forcedMajor(new HeapTuning({ execArgv: [], nodeOptions: '', usedHeap: small })), 'a 50 MB heap').to.equal(1);
    expect(await forcedMajor(new HeapTuning({ execArgv: [], nodeOptions: '', usedHeap: () => LARGE_HEAP })), 'a large heap: V8 keeps its own growth').to.equal(0);
    expect(await forcedMajor(new HeapTuning({ execArgv: ['--heap-growing-percent=80'], nodeOptions: '', usedHeap: small })), 'node was given its own growth').to.equal(0);
  });

  it('grows the heap 2x while a large upload streams and a moment after, then makes it tight again with one collection', async () => {
    // A tight growth turned every 20-30 MB of a 100 MB upload into a full collection of the catalog.
    const quietMs = 1500;
    const tuning = new HeapTuning({ execArgv: [], nodeOptions: '', usedHeap: small, checkMs: 10, quietMs });
    try {
      expect(await forcedMajors(() => tuning.loaded()), 'the load').to.equal(1);
      expect(tuning.growingPercent).to.equal(HEAP_GROWING_PERCENT);
      let ended = 0;
      const whileStreaming = await forcedMajors(async () => {
        const endFirst = tuning.streaming();
        expect(tuning.growingPercent, 'at once').to.equal(STREAM_GROWING_PERCENT);
        const endSecond = tuning.streaming();
        endFirst();
        endFirst(); // once only: the second stream still runs
        await sleep(60);
        expect(tuning.growingPercent, 'one stream still running').to.equal(STREAM_GROWING_PERCENT);
        endSecond();
        ended = performance.now();
        await sleep(60);
        expect(tuning.growingPercent, 'within the quiet time').to.equal(STREAM_GROWING_PERCENT);
      });
      expect(whileStreaming, 'no collection while streaming').to.equal(0);
      let tightAt = 0;
      const after = await forcedMajors(async () => {
        while (tuning.growingPercent !== HEAP_GROWING_PERCENT && performance.now() - ended < quietMs + 5000) await sleep(10);
        tightAt = performance.now();
      });
      expect(tuning.growingPercent, 'after the quiet time').to.equal(HEAP_GROWING_PERCENT);
      expect(tightAt - ended, 'not before the quiet time is over').to.be.at.least(quietMs);
      expect(after, 'one collection applies the tight growth').to.equal(1);
      expect(await forcedMajors(() => sleep(100)), 'and only one').to.equal(0);
    } finally {
      tuning.stop();
    }
  });

  it('changes nothing for streams when the heap is large or node was given its own growth', async () => {
    for (const tuning of [
      new HeapTuning({ execArgv: [], nodeOptions: '', usedHeap: () => LARGE_HEAP, checkMs: 10, quietMs: 50 }),
      new HeapTuning({ execArgv: ['--heap-growing-percent=80'], nodeOptions: '', usedHeap: small, checkMs: 10, quietMs: 50 }),
    ]) {
      try {
        tuning.loaded();
        const before = tuning.growingPercent;
        const n = await forcedMajors(async () => {
          tuning.streaming()();
          await sleep(150);
        });
        expect(tuning.growingPercent).to.equal(before);
        expect(n).to.equal(0);
      } finally {
        tuning.stop();
      }
    }
  });
});
