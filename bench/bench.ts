// `npm run bench`: pypi-lite's speed at 100,000 files, each number next to a baseline measured
// in the same run on the same machine (a bare node:http server serving the same bytes, and
// sha256sum for hashing), because absolute numbers on a shared machine mean little.
//
//   npm run bench                         5,000 projects x 10 versions x (wheel + sdist)
//   npm run bench -- --quick              200 projects, 2 s per measurement (smoke test)
//   npm run bench -- --projects 1000 --versions 4 --duration 5
//   npm run bench -- --cpu-prof           also profile the servers and print the hot functions
//   npm run bench -- --files 1000000      the large-index mode: 20,000 projects x 25 versions x 2,
//                                         its own table (memory, starts, page p99, new files)
//
// It measures, never judges: the exit code is 0 unless the benchmark itself fails.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { capturePages, ROOT_PATH, warmPages } from './baseline.js';
import { ensureCorpus, mb, randomPayload, SCRATCH_PREFIX, stageNewFiles, type Corpus } from './corpus.js';
import { projectName, wheelParts } from './dists.js';
import { LOCAL_BIG, makeProxyCorpus, UPSTREAM_BIG, UPSTREAM_FILES } from './upstream.js';
import { runS3Bench } from './s3.js';
import { LOAD_GENERATOR, load, rng, type LoadResult } from './load.js';
import type { FloorResult } from './floor.js';
import { formatSummary, profileFiles, summarize } from './profile.js';
import { BIN, download, get, getJson, HTML_ACCEPT, PIP_ACCEPT, post, startBaseline, startPypiLite, waitUntil, type Proc } from './procs.js';

// ---------------------------------------------------------------------------------------------
// options

interface Args {
  projects: number;
  versions: number;
  seconds: number;
  connections: number;
  sample: number;
  bigMb: number;
  newFiles: number;
  downloads: number;
  uploads: number;
  fresh: boolean;
  cpuProf: boolean;
  skip: Set<string>;
  quick: boolean;
  /** --files N: the large-corpus mode (its own table; see filesRun). */
  files: number;
}

const SKIPPABLE = ['sha256sum', 'pages', 'ui', 'info', 'download', 'upload', 'newfiles', 'upstream'];

function usage(): string {
  return `usage: npm run bench -- [options]
  --projects N      projects in the corpus (default 5000)
  --versions M      versions per project, each a wheel and an sdist (default 10)
  --duration S      seconds per throughput measurement (default 10)
  --connections C   concurrent connections (default 32)
  --sample K        project pages in the request mix (default 2000)
  --new-files N     files copied in for the "new files visible" measurement (default 1000)
  --big-mb N        size of the download/upload file in MB (default 100)
  --downloads N     downloads of the big file per server (default 6)
  --uploads N       uploads of a big wheel per server (default 3)
  --quick           200 projects, 2 s measurements: a smoke test of about a minute
  --files N         the large-index mode instead: N files (N / 50 projects x 25 versions x
                    wheel + sdist; 1000000 is the issue's), corpus generated once under the temp
                    dir; prints peak RSS, warm start, first /simple/ answer on a cold start,
                    project page p99 under load and how soon a new file is listed
  --fresh           regenerate the corpus even if a complete one exists
  --cpu-prof        run the pypi-lite servers with --cpu-prof and print the hottest functions
  --skip LIST       comma list of: ${SKIPPABLE.join(', ')}
  --s3              replicas on one S3 bucket (Ceph RGW harness) instead: --objects N (default
                    100000), --big-mb, --duration, --connections, --sample
`;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { projects: 5000, versions: 10, seconds: 10, connections: 32, sample: 2000, bigMb: 100, newFiles: 1000, downloads: 6, uploads: 3, fresh: false, cpuProf: false, skip: new Set(), quick: false, files: 0 };
  const explicit = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${k} needs a positive number\n${usage()}`);
      explicit.add(k);
      return v;
    };
    switch (k) {
      case '--projects': a.projects = Math.floor(num()); break;
      case '--versions': a.versions = Math.floor(num()); break;
      case '--duration': a.seconds = num(); break;
      case '--connections': a.connections = Math.floor(num()); break;
      case '--sample': a.sample = Math.floor(num()); break;
      case '--new-files': a.newFiles = Math.floor(num()); break;
      case '--big-mb': a.bigMb = num(); break;
      case '--downloads': a.downloads = Math.floor(num()); break;
      case '--uploads': a.uploads = Math.floor(num()); break;
      case '--quick': a.quick = true; break;
      case '--files': a.files = Math.floor(num()); break;
      case '--fresh': a.fresh = true; break;
      case '--cpu-prof': a.cpuProf = true; break;
      case '--skip':
        for (const s of (argv[++i] ?? '').split(',').filter(Boolean)) {
          if (!SKIPPABLE.includes(s)) throw new Error(`unknown --skip ${s}\n${usage()}`);
          a.skip.add(s);
        }
        break;
      case '-h':
      case '--help':
        process.stdout.write(usage());
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${k}\n${usage()}`);
    }
  }
  if (a.files) {
    // 25 versions x (wheel + sdist) per project; --projects/--versions still win if given.
    if (!explicit.has('--versions')) a.versions = 25;
    if (!explicit.has('--projects')) a.projects = Math.max(1, Math.round(a.files / (2 * a.versions)));
    // No 100 MB file to download or upload in this mode: 1 MB keeps the corpus about file count.
    if (!explicit.has('--big-mb')) a.bigMb = 1;
  }
  if (a.quick) {
    if (!explicit.has('--projects')) a.projects = 200;
    if (!explicit.has('--duration')) a.seconds = 2;
    if (!explicit.has('--new-files')) a.newFiles = 200;
    if (!explicit.has('--downloads')) a.downloads = 4;
    if (!explicit.has('--uploads')) a.uploads = 2;
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// helpers

const T0 = performance.now();
function log(msg: string): void {
  process.stderr.write(`[bench ${((performance.now() - T0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
}

const normalize = (name: string): string => name.replace(/[-_.]+/g, '-').toLowerCase();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const running = new Set<Proc>();
function track(p: Proc): Proc {
  running.add(p);
  p.proc.once('exit', () => running.delete(p));
  return p;
}
async function stop(p: Proc): Promise<void> {
  await p.stop();
  running.delete(p);
}

function run(cmd: string, args: string[], input?: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
    p.stdin.end(input ?? '');
  });
}

/**
 * Wall time and CPU time (user + system of find, xargs and sha256sum) of hashing every file,
 * with as many sha256sum processes as cores (the issue's baseline: what the machine can do).
 */
async function sha256sum(root: string): Promise<{ ms: number; cpuMs: number }> {
  const t0 = performance.now();
  // bash's `times` prints the CPU time of the shell, then of its (waited-for) children.
  const procs = String(os.availableParallelism());
  const r = await run('bash', ['-c', 'find "$1" -type f -print0 | xargs -0 -P "$2" -n 1000 sha256sum > /dev/null || exit 1; times', 'bash', root, procs]);
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`sha256sum failed: ${r.out}`);
  const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(r.out.trim());
  const cpuMs = m ? (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000 : NaN;
  return { ms, cpuMs };
}

/**
 * The cold start's floor in Node (bench/floor.ts): every file read and hashed and its
 * metadata's bytes obtained by as many worker threads as cores, nothing else. Wall time of the
 * whole process (Node's start included, as sha256sum's runs include theirs) and its CPU time.
 */
async function nodeFloor(root: string): Promise<FloorResult> {
  const t0 = performance.now();
  const r = await run(process.execPath, [fileURLToPath(new URL('./floor.js', import.meta.url)), root]);
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`the Node floor failed: ${r.out}`);
  const out = JSON.parse(r.out.trim().split('\n').pop() ?? '{}') as FloorResult;
  return { ...out, ms };
}

interface Health {
  status: string;
  projects: number;
  files: number;
  hashing: number;
}

async function health(url: string): Promise<{ status: number; json: Health } | null> {
  try {
    return await getJson<Health>(`${url}/health`);
  } catch {
    return null;
  }
}

function multipart(boundary: string, fields: [string, string][], file?: { field: string; filename: string; parts: Buffer[] }): Buffer[] {
  let head = '';
  for (const [k, v] of fields) head += `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`;
  if (!file) return [Buffer.from(`${head}--${boundary}--\r\n`)];
  head += `--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; filename="${file.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  return [Buffer.from(head), ...file.parts, Buffer.from(`\r\n--${boundary}--\r\n`)];
}

// ---------------------------------------------------------------------------------------------
// results

interface Row {
  metric: string;
  pypi: string;
  base: string;
  ratio: string;
  target: string;
  ok: boolean | null;
}

const rows: Row[] = [];
const cpuRows: { metric: string; pypi: string; base: string; ratio: string }[] = [];
const notes: string[] = [];

/** A row of the CPU-cost table; `ratio` is baseline cost / pypi-lite cost (1 = as cheap as the baseline). */
function cpuRow(metric: string, pypi: number, base: number | null, unit: string): void {
  const fmt = (n: number) => `${n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)} ${unit}`;
  cpuRows.push({ metric, pypi: fmt(pypi), base: base === null ? '—' : fmt(base), ratio: base === null || !pypi ? '—' : (base / pypi).toFixed(2) });
}

function row(metric: string, pypi: string, base: string, ratio: number | null, target: string, ok: boolean | null): void {
  rows.push({ metric, pypi, base, ratio: ratio === null ? '—' : ratio.toFixed(2), target, ok });
}

function table(): string {
  const head = ['metric', 'pypi-lite', 'baseline', 'ratio', 'target', 'ok?'];
  return markdown(head, rows.map((r) => [r.metric, r.pypi, r.base, r.ratio, r.target, r.ok === null ? '—' : r.ok ? 'yes' : '**NO**']));
}

function markdown(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

const fmtRps = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number) => `${Math.round(n).toLocaleString('en-US')} ms`;

/**
 * Alternate the two servers in short segments (A B B A, repeated) so that drift on a noisy
 * machine hits both equally. Segments of SEGMENT_S seconds (wrk takes whole seconds): with two
 * segments a side (one A B B A), the two halves of one server differed by up to 30% on the
 * shared VMs these runs use, and the page ratios of the same code moved between 0.55 and 1.0
 * from one run to the next.
 */
type Measured = LoadResult & { cpuMs: number };

const SEGMENT_S = 1;

async function abba(
  what: string,
  a: Args,
  targets: { pypi: Proc; base: Proc },
  paths: string[],
  headers: Record<string, string>,
  // The baseline's own paths (default: the same) and the two sides' names in the log.
  basePaths: string[] = paths,
  names: [string, string] = ['pypi-lite', 'baseline'],
): Promise<{ pypi: Measured; base: Measured }> {
  // Whole A B B A rounds (two segments a side each), about a.seconds a side in all.
  const rounds = Math.max(1, Math.round(a.seconds / (2 * SEGMENT_S)));
  const warm = 1;
  const opts = { headers, connections: a.connections };
  const measure = async (side: 'pypi' | 'base', seconds: number): Promise<Measured> => {
    const p = targets[side];
    const c0 = p.cpuMs() ?? 0;
    const r = await load(p.url, { ...opts, paths: side === 'pypi' ? paths : basePaths, seconds });
    return { ...r, cpuMs: (p.cpuMs() ?? 0) - c0 };
  };
  await measure('pypi', warm);
  await measure('base', warm);
  const segments: Record<'pypi' | 'base', Measured[]> = { pypi: [], base: [] };
  for (let i = 0; i < rounds; i++) {
    for (const side of ['pypi', 'base', 'base', 'pypi'] as const) segments[side].push(await measure(side, SEGMENT_S));
  }
  // Segments of equal length: the mean of their rates is the rate over all of them. Each
  // segment's p99 estimates the same p99: their mean is taken (their maximum grows with the
  // number of segments: one hiccup of the machine in 12 segments read as the p99 of all).
  const merge = (xs: Measured[]): Measured => {
    const sum = (field: (x: Measured) => number): number => xs.reduce((n, x) => n + field(x), 0);
    const mean = (field: (x: Measured) => number): number => sum(field) / xs.length;
    const ms = (v: number): number => Math.round(v * 100) / 100;
    return {
      cpuMs: sum((x) => x.cpuMs),
      rps: mean((x) => x.rps),
      p50: ms(mean((x) => x.p50)),
      p99: ms(mean((x) => x.p99)),
      requests: sum((x) => x.requests),
      non2xx: sum((x) => x.non2xx),
      errors: sum((x) => x.errors),
      throughput: mean((x) => x.throughput),
    };
  };
  const pypi = merge(segments.pypi);
  const base = merge(segments.base);
  for (const [n, r] of [[names[0], pypi], [names[1], base]] as const) {
    if (r.non2xx || r.errors) notes.push(`${what}: ${n} had ${r.non2xx} non-2xx answers and ${r.errors} errors`);
  }
  const spread = (xs: Measured[]) => `${xs.length} segments ${fmtRps(Math.min(...xs.map((x) => x.rps)))}-${fmtRps(Math.max(...xs.map((x) => x.rps)))}`;
  const us = (m: Measured) => (m.cpuMs * 1000) / Math.max(1, m.requests);
  log(
    `${what}: ${names[0]} ${fmtRps(pypi.rps)} req/s (p50 ${pypi.p50} ms, p99 ${pypi.p99} ms; ${spread(segments.pypi)}; ${us(pypi).toFixed(0)} us CPU/request), ` +
      `${names[1]} ${fmtRps(base.rps)} req/s (p50 ${base.p50} ms, p99 ${base.p99} ms; ${spread(segments.base)}; ${us(base).toFixed(0)} us CPU/request)`,
  );
  cpuRow(`${what}, CPU per request`, us(pypi), us(base), 'us');
  return { pypi, base };
}

function pageRows(label: string, r: { pypi: LoadResult; base: LoadResult }, minRatio: number, p99Target: number | null): void {
  const ratio = r.pypi.rps / r.base.rps;
  row(`${label} req/s`, fmtRps(r.pypi.rps), fmtRps(r.base.rps), ratio, `>= ${minRatio} x baseline`, ratio >= minRatio);
  if (p99Target !== null) {
    row(`${label} p50 / p99`, `${r.pypi.p50} / ${r.pypi.p99} ms`, `${r.base.p50} / ${r.base.p99} ms`, null, `p99 < ${p99Target} ms`, r.pypi.p99 < p99Target);
  }
}

// ---------------------------------------------------------------------------------------------
// the upstream proxy

/** The absolute URLs of a project's files, by file name, from its JSON page. */
async function fileUrls(server: string, project: string): Promise<Map<string, { url: string; size: number }>> {
  const page = `${server}/simple/${project}/`;
  const r = await getJson<{ files: { filename: string; url: string; size?: number }[] }>(page, { Accept: PIP_ACCEPT });
  if (r.status !== 200) throw new Error(`GET ${page} answered ${r.status}`);
  return new Map(r.json.files.map((f) => [f.filename, { url: new URL(f.url, page).href, size: f.size ?? -1 }]));
}

/** Download every URL, `concurrency` at a time; the wall time, bytes and the CPU `cpuOf` used. */
async function downloadAll(urls: { url: string; size: number }[], concurrency: number, cpuOf: Proc): Promise<{ ms: number; bytes: number; cpuMs: number }> {
  const c0 = cpuOf.cpuMs() ?? 0;
  const t0 = performance.now();
  let next = 0;
  let bytes = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < urls.length) {
        const f = urls[next++];
        const r = await download(f.url);
        if (r.status !== 200 || r.bytes !== f.size) throw new Error(`download ${f.url}: status ${r.status}, ${r.bytes} of ${f.size} bytes`);
        bytes += r.bytes;
      }
    }),
  );
  return { ms: performance.now() - t0, bytes, cpuMs: (cpuOf.cpuMs() ?? 0) - c0 };
}

/**
 * Rows of the caching proxy: a second pypi-lite over a small corpus is the upstream, and a
 * pypi-lite with --upstream serves its proxied projects next to local ones of the same size.
 * Its baselines are the same server's local pages and files, and the upstream itself.
 */
async function proxyRows(a: Args, work: string, htpasswd: string, profDir: string | undefined): Promise<void> {
  const projects = Math.min(a.sample, 200);
  const files = a.quick ? 8 : 20;
  const fileBytes = 5e6;
  const t0 = performance.now();
  const pc = await makeProxyCorpus({ dir: work, projects, versions: a.versions, bigBytes: Math.round(a.bigMb * 1e6), files: 2 * files, fileBytes });
  log(`upstream proxy: ${projects} upstream + ${projects} local projects x ${a.versions} versions, 2 x ${mb(a.bigMb * 1e6)} MB, ${2 * files} x ${mb(fileBytes)} MB upstream files written in ${fmtMs(performance.now() - t0)}`);
  const ready = async (p: Proc) => waitUntil(async () => {
    const h = await health(p.url);
    return h?.status === 200 && h.json.hashing === 0;
  }, 5 * 60_000, `${p.name} ready`, 20);
  const up = track(await startPypiLite({ root: pc.upstreamRoot, cacheDir: path.join(work, 'upstream-cache-dir'), htpasswd, logLevel: 'warn', name: 'upstream' }));
  await ready(up);
  const proxy = track(
    await startPypiLite({
      root: pc.localRoot,
      cacheDir: path.join(work, 'proxy-cache-dir'),
      htpasswd,
      logLevel: 'warn',
      cpuProfDir: profDir && path.join(profDir, 'proxy'),
      name: 'pypi-lite proxy',
      extraArgs: ['--upstream', `${up.url}/simple/`, '--upstream-cache', path.join(work, 'proxy-upstream-cache')],
    }),
  );
  await ready(proxy);

  // 10a. Project pages: every page requested once (the proxied ones are then cached), then the
  // same server measured on random proxied pages against random local pages (A B B A).
  const proxied = pc.upstreamProjects.map((n) => `/simple/${n}/`);
  const local = pc.localProjects.map((n) => `/simple/${n}/`);
  await warmPages(proxy.url, [...proxied, ...local]);
  for (const accept of [HTML_ACCEPT, PIP_ACCEPT]) {
    let sizes = [0, 0];
    for (let k = 0; k < Math.min(20, projects); k++) {
      const [x, y] = await Promise.all([get(`${proxy.url}${proxied[k]}`, { Accept: accept }), get(`${proxy.url}${local[k]}`, { Accept: accept })]);
      if (x.status !== 200 || y.status !== 200) throw new Error(`proxy: ${proxied[k]} ${x.status}, ${local[k]} ${y.status}`);
      sizes = [sizes[0] + x.body.length, sizes[1] + y.body.length];
    }
    const n = Math.min(20, projects);
    notes.push(`upstream proxy, ${accept === HTML_ACCEPT ? 'HTML' : 'JSON'} pages: ${Math.round(sizes[0] / n)} bytes proxied vs ${Math.round(sizes[1] / n)} bytes local on average`);
  }
  const upCpu0 = up.cpuMs() ?? 0;
  const both = { pypi: proxy, base: proxy };
  const names: [string, string] = ['proxied', 'local'];
  for (const [label, headers] of [['HTML', { Accept: HTML_ACCEPT }], ['JSON', { Accept: PIP_ACCEPT }]] as const) {
    const r = await abba(`proxied project page ${label} (cached)`, a, both, proxied, headers, local, names);
    const ratio = r.pypi.rps / r.base.rps;
    row(`proxied page ${label} (cached) req/s`, fmtRps(r.pypi.rps), `${fmtRps(r.base.rps)} (local page)`, ratio, '(local page = baseline)', null);
    row(`proxied page ${label} p50 / p99`, `${r.pypi.p50} / ${r.pypi.p99} ms`, `${r.base.p50} / ${r.base.p99} ms`, null, 'p99 < 10 ms', r.pypi.p99 < 10);
  }
  const upCpu = (up.cpuMs() ?? 0) - upCpu0;
  log(`proxy: the upstream used ${fmtMs(upCpu)} CPU while the cached pages were measured`);

  // 10b. The big file once cached, against the local file of the same size (alternating).
  const [bigUp] = [...(await fileUrls(proxy.url, UPSTREAM_BIG)).values()];
  const [bigLocal] = [...(await fileUrls(proxy.url, LOCAL_BIG)).values()];
  // The same payload in both: they differ only by a few bytes of their names.
  if (!bigUp || !bigLocal || Math.abs(bigUp.size - bigLocal.size) > 1000) throw new Error('proxy: the two big files are missing or of different sizes');
  await downloadAll([bigUp], 1, proxy); // the first fetch caches it
  const totals = { pypi: { bytes: 0, ms: 0, cpuMs: 0 }, base: { bytes: 0, ms: 0, cpuMs: 0 } };
  for (let i = 0; i < a.downloads; i++) {
    const order: ('pypi' | 'base')[] = i % 2 === 0 ? ['pypi', 'base'] : ['base', 'pypi'];
    for (const t of order) {
      const r = await downloadAll([t === 'pypi' ? bigUp : bigLocal], 1, proxy);
      totals[t].bytes += r.bytes;
      totals[t].ms += r.ms;
      totals[t].cpuMs += r.cpuMs;
    }
  }
  const mbps = (t: { bytes: number; ms: number }) => t.bytes / 1e6 / (t.ms / 1000);
  const perGb = (t: { bytes: number; cpuMs: number }) => t.cpuMs / (t.bytes / 1e9);
  log(`proxy: cached ${mb(bigUp.size)} MB file x ${a.downloads}: ${mbps(totals.pypi).toFixed(0)} MB/s (${perGb(totals.pypi).toFixed(0)} ms CPU/GB), local file ${mbps(totals.base).toFixed(0)} MB/s (${perGb(totals.base).toFixed(0)} ms CPU/GB)`);
  row(`proxied file ${mb(bigUp.size)} MB (cached) download`, `${mbps(totals.pypi).toFixed(0)} MB/s`, `${mbps(totals.base).toFixed(0)} MB/s (local file)`, mbps(totals.pypi) / mbps(totals.base), '(local file = baseline)', null);
  cpuRow('proxied file (cached) download, CPU per GB (baseline: local file)', perGb(totals.pypi), perGb(totals.base), 'ms');

  // 10c. First fetch: distinct files through the proxy on a cold cache against the same files
  // straight from the upstream; the page is fetched first, as pip does. Halves in the order
  // upstream, proxy, proxy, upstream; sequentially, then 4 at once (other files).
  const viaProxy = await fileUrls(proxy.url, UPSTREAM_FILES);
  const direct = await fileUrls(up.url, UPSTREAM_FILES);
  const names2 = [...direct.keys()].sort((x, y) => x.localeCompare(y, 'en', { numeric: true }));
  if (names2.length !== 2 * files || names2.some((n) => !viaProxy.has(n))) throw new Error(`proxy lists ${viaProxy.size} of the ${direct.size} upstream files`);
  for (const [mode, concurrency, set] of [['sequential', 1, names2.slice(0, files)], ['4 at once', 4, names2.slice(files)]] as const) {
    const halves = [set.slice(0, files / 2), set.slice(files / 2)];
    const sum = { proxy: { ms: 0, bytes: 0, cpuMs: 0 }, direct: { ms: 0, bytes: 0, cpuMs: 0 } };
    const add = (k: 'proxy' | 'direct', r: { ms: number; bytes: number; cpuMs: number }) => {
      sum[k] = { ms: sum[k].ms + r.ms, bytes: sum[k].bytes + r.bytes, cpuMs: sum[k].cpuMs + r.cpuMs };
    };
    // CPU: the proxy's own for its fetches (it also makes the upstream serve the file), the
    // upstream's for the direct downloads.
    add('direct', await downloadAll(halves[0].map((n) => direct.get(n)!), concurrency, up));
    add('proxy', await downloadAll(halves[0].map((n) => viaProxy.get(n)!), concurrency, proxy));
    add('proxy', await downloadAll(halves[1].map((n) => viaProxy.get(n)!), concurrency, proxy));
    add('direct', await downloadAll(halves[1].map((n) => direct.get(n)!), concurrency, up));
    const each = `${files} x ${mb(fileBytes)} MB`;
    log(
      `proxy first fetch, ${each}, ${mode}: through the proxy ${fmtMs(sum.proxy.ms)} (${mbps(sum.proxy).toFixed(0)} MB/s, proxy ${perGb(sum.proxy).toFixed(0)} ms CPU/GB), ` +
        `from the upstream ${fmtMs(sum.direct.ms)} (${mbps(sum.direct).toFixed(0)} MB/s, ${perGb(sum.direct).toFixed(0)} ms CPU/GB)`,
    );
    row(
      `first fetch ${each}, ${mode}`,
      `${fmtMs(sum.proxy.ms)} (${mbps(sum.proxy).toFixed(0)} MB/s)`,
      `${fmtMs(sum.direct.ms)} (${mbps(sum.direct).toFixed(0)} MB/s, upstream)`,
      sum.direct.ms / sum.proxy.ms,
      '(straight from the upstream = baseline)',
      null,
    );
    cpuRow(`first fetch through the proxy, ${mode}, CPU per GB (baseline: the upstream serving it)`, perGb(sum.proxy), perGb(sum.direct), 'ms');
  }
  for (const p of [proxy, up]) if (p.warnings().length) notes.push(`the ${p.name} logged ${p.warnings().length} warnings, e.g. ${p.warnings()[0].slice(0, 300)}`);
  await stop(proxy);
  await stop(up);
}

// ---------------------------------------------------------------------------------------------
// the large-index mode (--files N): the issue's second table

/**
 * One pypi-lite over N files: a cold start (first /simple/ answer, then every file hashed), a
 * warm start, project pages under load (wrk), new files landing in the root, peak memory.
 */
async function filesRun(a: Args, work: string, corpus: Corpus, htpasswd: string, profDir: string | undefined): Promise<void> {
  const root = corpus.root;
  const cacheDir = path.join(work, 'cache');
  const tag = Date.now().toString(36);
  const pick = rng(Number.parseInt(tag.slice(-6), 36));
  const n = corpus.files.toLocaleString('en-US');

  // 1. Cold start: empty cache dir.
  log(`cold start over ${n} files (empty cache dir)`);
  const cold = track(await startPypiLite({ root, cacheDir, htpasswd, logLevel: 'warn', cpuProfDir: profDir && path.join(profDir, 'cold'), name: 'pypi-lite cold' }));
  await waitUntil(async () => (await get(`${cold.url}/simple/`, { Accept: HTML_ACCEPT }).catch(() => null))?.status === 200, 10 * 60_000, 'cold /simple/', 5);
  const coldSimpleMs = performance.now() - cold.spawnedAt;
  log(`cold: /simple/ answered after ${fmtMs(coldSimpleMs)}`);
  let lastLog = performance.now();
  await waitUntil(
    async () => {
      const h = await health(cold.url);
      if (performance.now() - lastLog > 15_000 && h) {
        lastLog = performance.now();
        log(`  ${h.json.status}: ${h.json.files} files, ${h.json.hashing} still hashing`);
      }
      return h?.status === 200 && h.json.hashing === 0;
    },
    3 * 60 * 60_000,
    'cold start hashing',
    100,
  );
  const coldIdleMs = performance.now() - cold.spawnedAt;
  const coldHealth = (await health(cold.url))!.json;
  const coldRss = cold.peakRss() ?? 0;
  log(`cold: every file hashed and read after ${fmtMs(coldIdleMs)} (${fmtMs(cold.cpuMs() ?? NaN)} CPU; ${coldHealth.files} files, ${coldHealth.projects} projects; peak RSS ${mb(coldRss)} MB)`);
  if (coldHealth.files !== corpus.files) notes.push(`pypi-lite indexed ${coldHealth.files} files, the corpus has ${corpus.files}`);
  if (cold.warnings().length) notes.push(`the cold server logged ${cold.warnings().length} warnings, e.g. ${cold.warnings()[0].slice(0, 300)}`);
  await stop(cold);

  // 2. Warm start: every file served with its hash.
  log('warm start (same cache dir)');
  const probe = normalize(projectName(Math.floor(pick() * corpus.projects)));
  const srv = track(await startPypiLite({ root, cacheDir, htpasswd, logLevel: 'warn', cpuProfDir: profDir && path.join(profDir, 'warm'), name: 'pypi-lite' }));
  await waitUntil(
    async () => {
      const h = await health(srv.url);
      if (h?.status !== 200 || h.json.hashing !== 0) return false;
      const page = await getJson<{ files: { hashes: { sha256?: string } }[] }>(`${srv.url}/simple/${probe}/`, { Accept: PIP_ACCEPT }).catch(() => null);
      return page?.status === 200 && page.json.files.length > 0 && page.json.files.every((f) => f.hashes.sha256);
    },
    30 * 60_000,
    'warm start',
    10,
  );
  const warmMs = performance.now() - srv.spawnedAt;
  log(`warm: every file served with its hash after ${fmtMs(warmMs)} (${fmtMs(srv.cpuMs() ?? NaN)} CPU)`);

  // 3. Project pages under load: random projects, pip's Accept header.
  const indices = new Set<number>();
  while (indices.size < Math.min(a.sample, corpus.projects)) indices.add(Math.floor(pick() * corpus.projects));
  const projectPaths = [...indices].map((i) => `/simple/${normalize(projectName(i))}/`);
  await warmPages(srv.url, projectPaths);
  await load(srv.url, { paths: projectPaths, headers: { Accept: PIP_ACCEPT }, seconds: Math.min(2, a.seconds), connections: a.connections });
  const c0 = srv.cpuMs() ?? 0;
  const pages = await load(srv.url, { paths: projectPaths, headers: { Accept: PIP_ACCEPT }, seconds: a.seconds, connections: a.connections });
  const pageUs = (((srv.cpuMs() ?? 0) - c0) * 1000) / Math.max(1, pages.requests);
  log(`project pages (JSON), ${projectPaths.length} random projects, ${a.connections} connections: ${fmtRps(pages.rps)} req/s, p50 ${pages.p50} ms, p99 ${pages.p99} ms (${pageUs.toFixed(0)} us CPU/request)`);
  if (pages.non2xx || pages.errors) notes.push(`project pages: ${pages.non2xx} non-2xx answers and ${pages.errors} errors`);
  cpuRow('project page JSON, CPU per request', pageUs, null, 'us');

  // 4. New files: each written beside the root, then renamed into it ("lands"), until its project page lists it with its hash.
  const staged = await stageNewFiles(corpus, 5, tag);
  const visible: number[] = [];
  for (let k = 0; k < staged.files.length; k++) {
    const f = staged.files[k];
    const t0 = performance.now();
    await fsp.rename(path.join(staged.dir, f), path.join(root, f));
    await waitUntil(
      async () => {
        const r = await getJson<{ files: { filename: string; hashes: { sha256?: string } }[] }>(`${srv.url}/simple/${staged.projects[k]}/`, { Accept: PIP_ACCEPT }).catch(() => null);
        return r?.status === 200 && r.json.files.some((x) => x.filename === f && x.hashes.sha256);
      },
      120_000,
      `new file ${f} listed`,
      10,
    );
    visible.push(performance.now() - t0);
  }
  const worstNew = Math.max(...visible);
  log(`new files listed after ${visible.map((ms) => fmtMs(ms)).join(', ')}`);
  await Promise.all(staged.files.map((f) => fsp.rm(path.join(root, f), { force: true })));
  await fsp.rm(staged.dir, { recursive: true, force: true });

  // 5. Peak memory: the cold process, and the warm one after all of the above.
  await sleep(200);
  const warmRss = srv.peakRss() ?? 0;
  const peak = Math.max(coldRss, warmRss);
  if (srv.warnings().length) notes.push(`the server logged ${srv.warnings().length} warnings, e.g. ${srv.warnings()[0].slice(0, 300)}`);
  await stop(srv);

  row('peak RSS (VmHWM), cold start / warm start + load', `${mb(peak)} MB (${mb(coldRss)} / ${mb(warmRss)})`, '—', null, '< 1,000 MB', peak < 1000e6);
  row('warm start: all files served with hashes', fmtMs(warmMs), '—', null, '< 8,000 ms', warmMs < 8000);
  row('first /simple/ answer on a cold start', fmtMs(coldSimpleMs), '—', null, '< 5,000 ms', coldSimpleMs < 5000);
  row('project page p99 under load (JSON, wrk)', `${pages.p99} ms (p50 ${pages.p50} ms, ${fmtRps(pages.rps)} req/s)`, '—', null, 'p99 < 10 ms', pages.p99 < 10);
  row(`a new file listed in /simple/<p>/ after it lands (worst of ${visible.length})`, fmtMs(worstNew), '—', null, '< 2,000 ms', worstNew < 2000);
  notes.push(`cold start: every file hashed and read after ${fmtMs(coldIdleMs)}`);

  const generated = corpus.generatedMs === null ? 'reused' : `generated in ${(corpus.generatedMs / 1000).toFixed(1)} s`;
  process.stdout.write(
    `\npypi-lite benchmark, large index: ${corpus.projects.toLocaleString('en-US')} projects x ${corpus.versions} versions x (wheel + sdist) + one ${mb(corpus.bigFile.size)} MB wheel = ${n} files, ${mb(corpus.bytes)} MB (corpus ${generated})\n` +
      `node ${process.version}, ${os.availableParallelism()} CPUs; ${LOAD_GENERATOR} ${a.connections} connections, ${a.seconds} s of page load\n\n` +
      `${table()}\n\n${markdown(['metric', 'pypi-lite', 'baseline', 'ratio'], cpuRows.map((r) => [r.metric, r.pypi, r.base, r.ratio]))}\n`,
  );
  if (notes.length) process.stdout.write(`\nnotes:\n${notes.map((x) => `- ${x}`).join('\n')}\n`);
  const missed = rows.filter((r) => r.ok === false).map((r) => r.metric);
  process.stdout.write(`\n${missed.length ? `missed targets: ${missed.join('; ')}` : 'every target met'}\n`);
  process.stdout.write(`total time ${((performance.now() - T0) / 1000).toFixed(0)} s\n`);
}

// ---------------------------------------------------------------------------------------------
// the run

async function main(): Promise<void> {
  // Object storage replicas (issue 14): a mode of its own (bench/s3.ts).
  if (process.argv.includes('--s3')) return runS3Bench(process.argv.slice(2));
  const a = parseArgs(process.argv.slice(2));
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-bench-run-'));
  const profDir = a.cpuProf ? path.join(work, 'profiles') : undefined;
  log(`node ${process.version}, ${os.availableParallelism()} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM; work dir ${work}`);

  const corpus: Corpus = await ensureCorpus({ projects: a.projects, versions: a.versions, bigBytes: Math.round(a.bigMb * 1e6), fresh: a.fresh, log });
  const root = corpus.root;
  const cacheDir = path.join(work, 'cache');
  const uploadDir = path.join(work, 'baseline-uploads');
  await fsp.mkdir(uploadDir);
  const htpasswd = path.join(work, 'htpasswd');
  const password = 'bench-password';
  const pw = await run(process.execPath, [BIN, 'passwd', htpasswd, 'bench', '--password-stdin'], password);
  if (pw.code !== 0) throw new Error(`pypi-lite passwd failed: ${pw.out}`);
  const auth = `Basic ${Buffer.from(`bench:${password}`).toString('base64')}`;
  if (a.files) {
    await filesRun(a, work, corpus, htpasswd, profDir);
    if (!profDir) await fsp.rm(work, { recursive: true, force: true });
    return;
  }
  const tag = Date.now().toString(36);
  const pick = rng(Number.parseInt(tag.slice(-6), 36));

  // 1. Cold start (empty cache dir) between two sha256sum runs over the same files. A first,
  // unmeasured pass reads the corpus into the page cache: otherwise the first measured run may
  // read it from the disk (3-4 s against 0.8-1 s for the second run here) while the cold start,
  // after it, reads memory, and the mean of the two runs flattered pypi-lite (0.47 for 0.17).
  const sha: { ms: number; cpuMs: number }[] = [];
  let floor: FloorResult | null = null;
  if (!a.skip.has('sha256sum')) {
    const first = await sha256sum(root);
    log(`sha256sum, unmeasured pass (reads the corpus into the page cache): ${fmtMs(first.ms)}`);
    sha.push(await sha256sum(root));
    log(`sha256sum over ${corpus.files} files (${mb(corpus.bytes)} MB): ${fmtMs(sha[0].ms)} (${fmtMs(sha[0].cpuMs)} CPU)`);
    floor = await nodeFloor(root);
    log(`the floor in Node (read, sha256, metadata bytes; ${os.availableParallelism()} worker threads): ${fmtMs(floor.ms)} (${fmtMs(floor.cpuMs)} CPU; ${floor.files} files, ${floor.metadata} with metadata)`);
  }
  log('cold start (empty cache dir)');
  const cold = track(await startPypiLite({ root, cacheDir, htpasswd, logLevel: 'warn', cpuProfDir: profDir && path.join(profDir, 'cold'), name: 'pypi-lite cold' }));
  await waitUntil(async () => (await get(`${cold.url}/simple/`, { Accept: HTML_ACCEPT }).catch(() => null))?.status === 200, 60_000, 'cold /simple/', 5);
  const coldSimpleMs = performance.now() - cold.spawnedAt;
  let loadedMs = 0;
  let last: Health | null = null;
  let lastLog = performance.now();
  await waitUntil(
    async () => {
      const h = await health(cold.url);
      if (h?.status === 200 && !loadedMs) loadedMs = performance.now() - cold.spawnedAt;
      if (h) last = h.json;
      if (performance.now() - lastLog > 10_000 && last) {
        lastLog = performance.now();
        log(`  ${last.status}: ${last.files} files, ${last.hashing} still hashing`);
      }
      return h?.status === 200 && h.json.hashing === 0;
    },
    30 * 60_000,
    'cold start hashing',
    25,
  );
  const coldIdleMs = performance.now() - cold.spawnedAt;
  const coldCpuMs = cold.cpuMs() ?? NaN;
  const coldHealth = (await health(cold.url))!.json;
  const coldRss = cold.peakRss();
  log(`cold: /simple/ answered after ${fmtMs(coldSimpleMs)}, catalog loaded after ${fmtMs(loadedMs)}, every file hashed and read after ${fmtMs(coldIdleMs)} (${fmtMs(coldCpuMs)} CPU; ${coldHealth.files} files, ${coldHealth.projects} projects)`);
  if (coldHealth.files !== corpus.files) notes.push(`pypi-lite indexed ${coldHealth.files} files, the corpus has ${corpus.files}`);
  const expectedProjects = corpus.projects + 1;
  if (coldHealth.projects !== expectedProjects) notes.push(`pypi-lite lists ${coldHealth.projects} projects, the corpus has ${expectedProjects}`);
  if (cold.warnings().length) notes.push(`the cold server logged ${cold.warnings().length} warnings, e.g. ${cold.warnings()[0].slice(0, 300)}`);
  await stop(cold);
  if (!a.skip.has('sha256sum')) {
    sha.push(await sha256sum(root));
    log(`sha256sum again: ${fmtMs(sha[1].ms)} (${fmtMs(sha[1].cpuMs)} CPU)`);
  }

  // 2. Warm start (same cache dir): this server takes every later measurement.
  log('warm start (same cache dir)');
  const probeProject = normalize(projectName(Math.floor(pick() * corpus.projects)));
  const srv = track(await startPypiLite({ root, cacheDir, htpasswd, logLevel: 'warn', cpuProfDir: profDir && path.join(profDir, 'warm'), name: 'pypi-lite' }));
  await waitUntil(
    async () => {
      const h = await health(srv.url);
      if (h?.status !== 200 || h.json.hashing !== 0) return false;
      const page = await getJson<{ files: { hashes: { sha256?: string } }[] }>(`${srv.url}/simple/${probeProject}/`, { Accept: PIP_ACCEPT }).catch(() => null);
      return page?.status === 200 && page.json.files.length > 0 && page.json.files.every((f) => f.hashes.sha256);
    },
    5 * 60_000,
    'warm start',
    10,
  );
  const warmMs = performance.now() - srv.spawnedAt;
  const warmCpuMs = srv.cpuMs() ?? NaN;
  log(`warm: every file served with its hash after ${fmtMs(warmMs)} (${fmtMs(warmCpuMs)} CPU)`);

  // 3. Capture the pages for the baseline (this also renders them in pypi-lite), start it.
  const indices = new Set<number>();
  const want = Math.min(a.sample, corpus.projects);
  while (indices.size < want) indices.add(Math.floor(pick() * corpus.projects));
  const projectPaths = [...indices].map((i) => `/simple/${normalize(projectName(i))}/`);
  const pagesFile = path.join(work, 'pages.json');
  const captured = await capturePages(srv.url, projectPaths, pagesFile);
  log(`captured ${captured.pages} pages (${mb(captured.bytes)} MB) for the baseline`);
  const bigUrlPath = `/packages/${corpus.bigFile.relPath}`;
  const base = track(await startBaseline([pagesFile, path.join(root, corpus.bigFile.relPath), bigUrlPath, uploadDir]));
  await waitUntil(async () => (await get(`${base.url}/simple/`, { Accept: HTML_ACCEPT }).catch(() => null))?.status === 200, 60_000, 'baseline /simple/', 5);
  const baseStartMs = performance.now() - base.spawnedAt;
  for (const p of projectPaths.slice(0, 3)) {
    for (const accept of [HTML_ACCEPT, PIP_ACCEPT]) {
      const [x, y] = await Promise.all([get(`${srv.url}${p}`, { Accept: accept }), get(`${base.url}${p}`, { Accept: accept })]);
      if (!x.body.equals(y.body) || x.headers['content-type'] !== y.headers['content-type']) throw new Error(`baseline does not serve the same ${p} as pypi-lite`);
    }
  }

  row('cold start: /simple/ answers', fmtMs(coldSimpleMs), fmtMs(baseStartMs), null, '< 3,000 ms', coldSimpleMs < 3000);
  if (sha.length) {
    const shaMs = sha.reduce((x, y) => x + y.ms, 0) / sha.length;
    const shaCpuMs = sha.reduce((x, y) => x + y.cpuMs, 0) / sha.length;
    cpuRow('cold start: hashing + metadata, CPU (all threads)', coldCpuMs / 1000, shaCpuMs / 1000, 's');
    const ratio = shaMs / coldIdleMs;
    row(
      'cold start: every file hashed + metadata',
      `${fmtMs(coldIdleMs)} (${(corpus.bytes / 1e6 / (coldIdleMs / 1000)).toFixed(0)} MB/s)`,
      `${fmtMs(shaMs)} (sha256sum x ${os.availableParallelism()})`,
      ratio,
      '>= 0.7 x sha256sum speed',
      ratio >= 0.7,
    );
    if (floor) {
      // What the target leaves: this much of it goes to reading, hashing and inflating alone.
      const floorRatio = shaMs / floor.ms;
      row('cold start, its floor in Node: read, sha256, metadata bytes', fmtMs(floor.ms), `${fmtMs(shaMs)} (sha256sum)`, floorRatio, '(reference, not a target)', null);
      cpuRow('cold start, its floor in Node (read, sha256, metadata bytes), CPU', floor.cpuMs / 1000, shaCpuMs / 1000, 's');
    }
  }
  row('warm start: all files served with hashes', fmtMs(warmMs), fmtMs(baseStartMs), null, '< 1,000 ms', warmMs < 1000);
  cpuRow('warm start, CPU (all threads)', warmCpuMs / 1000, null, 's');

  const targets = { pypi: srv, base };
  // 4. Simple API throughput.
  if (!a.skip.has('pages')) {
    log(`project pages: ${projectPaths.length} random projects, ${a.connections} connections, ${a.seconds} s per server`);
    pageRows('project page HTML', await abba('project page HTML', a, targets, projectPaths, { Accept: HTML_ACCEPT }), 0.8, 10);
    pageRows('project page JSON', await abba('project page JSON', a, targets, projectPaths, { Accept: PIP_ACCEPT }), 0.8, 10);
    const rootResult = await abba('root list (JSON, gzip)', a, targets, [ROOT_PATH], { Accept: PIP_ACCEPT, 'Accept-Encoding': 'gzip' });
    const rootRatio = rootResult.pypi.rps / rootResult.base.rps;
    row('/simple/ root list (gzip) req/s', fmtRps(rootResult.pypi.rps), fmtRps(rootResult.base.rps), rootRatio, '>= 0.5 x baseline', rootRatio >= 0.5);
  }
  // The issue's memory row ends here for this server: a warm start, then page load. What the
  // web UI, a 100 MB download and upload and new files add comes after, in a row of its own.
  const pagesRss = srv.peakRss();

  // 4b. The web UI's project pages (no baseline serves them) and search, from memory.
  if (!a.skip.has('ui')) {
    const uiPaths = projectPaths.map((p) => p.replace(/^\/simple\//, '/project/'));
    const uiHeaders = { Accept: 'text/html' };
    log(`UI project pages: ${uiPaths.length} random projects, ${a.connections} connections, ${a.seconds} s`);
    // The first view of each page reads and renders its README (then cached, bounded): view
    // every page once, as the Simple API pages are warmed, then a short warm-up of the mix.
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < uiPaths.length) await get(`${srv.url}${uiPaths[next++]}`, uiHeaders);
    }));
    await load(srv.url, { paths: uiPaths, headers: uiHeaders, seconds: 1, connections: a.connections });
    const c0 = srv.cpuMs() ?? 0;
    const ui = await load(srv.url, { paths: uiPaths, headers: uiHeaders, seconds: a.seconds, connections: a.connections });
    const cpuUs = (((srv.cpuMs() ?? 0) - c0) * 1000) / Math.max(1, ui.requests);
    log(`UI project page: ${fmtRps(ui.rps)} req/s (p50 ${ui.p50} ms, p99 ${ui.p99} ms; ${cpuUs.toFixed(0)} us CPU/request)`);
    if (ui.non2xx || ui.errors) notes.push(`UI project page: ${ui.non2xx} non-2xx answers and ${ui.errors} errors`);
    row(`project page UI (/project/<name>/) req/s, ${corpus.projects.toLocaleString('en-US')} projects`, fmtRps(ui.rps), '—', null, '(no baseline)', null);
    row('project page UI p50 / p99', `${ui.p50} / ${ui.p99} ms`, '—', null, 'p99 < 50 ms', ui.p99 < 50);
    cpuRow('project page UI, CPU per request', cpuUs, null, 'us');
    // Search over every project: one connection, so the latency is the server's time per query.
    // Queries: name prefixes, full names, a summary phrase every project matches, and a miss.
    const names = [...indices].slice(0, 50).map((i) => normalize(projectName(i)));
    const queries = [...names.map((n) => n.slice(0, 5)), ...names, 'benchmark project', 'no-such-project-anywhere'];
    const searchPaths = queries.map((q) => `/search?q=${encodeURIComponent(q)}`);
    // The first search builds the UI's project index; summaries are then read in the background.
    const everyProject = `of ${(corpus.projects + 1).toLocaleString('en-US')} projects`;
    await waitUntil(async () => (await get(`${srv.url}/search?q=benchmark+project`)).body.toString().includes(everyProject), 5 * 60_000, 'UI summaries loaded', 200);
    const sr = await load(srv.url, { paths: searchPaths, headers: uiHeaders, seconds: Math.max(1, Math.min(5, a.seconds)), connections: 1 });
    log(`UI search, 1 connection: ${fmtRps(sr.rps)} req/s (p50 ${sr.p50} ms, p99 ${sr.p99} ms)`);
    if (sr.non2xx || sr.errors) notes.push(`UI search: ${sr.non2xx} non-2xx answers and ${sr.errors} errors`);
    row('UI search p50 / p99 (1 connection)', `${sr.p50} / ${sr.p99} ms`, '—', null, 'p99 < 5 ms', sr.p99 < 5);
  }

  // 5. The same page mix with --log-level info (a line per request, to /dev/null).
  let infoRss: number | null = null;
  if (!a.skip.has('info') && !a.skip.has('pages')) {
    const info = track(await startPypiLite({ root, cacheDir, htpasswd, logLevel: 'info', cpuProfDir: profDir && path.join(profDir, 'info'), name: 'pypi-lite info' }));
    await waitUntil(async () => (await health(info.url))?.json.hashing === 0 && (await health(info.url))?.status === 200, 5 * 60_000, 'info server ready', 20);
    await warmPages(info.url, projectPaths);
    // The default level: one access-log line per request (to /dev/null), as users run it.
    for (const [label, accept] of [['HTML', HTML_ACCEPT], ['JSON', PIP_ACCEPT]] as const) {
      const r = await abba(`project page ${label}, --log-level info`, a, { pypi: info, base }, projectPaths, { Accept: accept });
      const ratio = r.pypi.rps / r.base.rps;
      row(`project page ${label} req/s, log level info`, fmtRps(r.pypi.rps), fmtRps(r.base.rps), ratio, '>= 0.75 x baseline', ratio >= 0.75);
      row(`project page ${label} p50 / p99, log level info`, `${r.pypi.p50} / ${r.pypi.p99} ms`, `${r.base.p50} / ${r.base.p99} ms`, null, '(info only)', null);
    }
    infoRss = info.peakRss();
    await stop(info);
  }

  // 6. Download of the big file, alternating servers.
  if (!a.skip.has('download')) {
    const totals = { pypi: { bytes: 0, ms: 0, cpuMs: 0 }, base: { bytes: 0, ms: 0, cpuMs: 0 } };
    for (let i = 0; i < a.downloads; i++) {
      const order: ('pypi' | 'base')[] = i % 2 === 0 ? ['pypi', 'base'] : ['base', 'pypi'];
      for (const t of order) {
        const c0 = targets[t].cpuMs() ?? 0;
        const r = await download(`${targets[t].url}${bigUrlPath}`);
        if (r.status !== 200 || r.bytes !== corpus.bigFile.size) throw new Error(`download from ${t}: status ${r.status}, ${r.bytes} bytes`);
        totals[t].bytes += r.bytes;
        totals[t].ms += r.ms;
        totals[t].cpuMs += (targets[t].cpuMs() ?? 0) - c0;
      }
    }
    const p = totals.pypi.bytes / 1e6 / (totals.pypi.ms / 1000);
    const b = totals.base.bytes / 1e6 / (totals.base.ms / 1000);
    const perGb = (t: { bytes: number; cpuMs: number }) => t.cpuMs / (t.bytes / 1e9);
    cpuRow('download, CPU per GB', perGb(totals.pypi), perGb(totals.base), 'ms');
    log(`download ${mb(corpus.bigFile.size)} MB x ${a.downloads}: pypi-lite ${p.toFixed(0)} MB/s (${perGb(totals.pypi).toFixed(0)} ms CPU/GB), baseline ${b.toFixed(0)} MB/s (${perGb(totals.base).toFixed(0)} ms CPU/GB)`);
    row(`download ${mb(corpus.bigFile.size)} MB`, `${p.toFixed(0)} MB/s`, `${b.toFixed(0)} MB/s`, p / b, '>= 0.9 x baseline', p / b >= 0.9);
  }

  // 7. Upload of a big wheel through the upload API (new version each time, removed after).
  if (!a.skip.has('upload')) {
    const payload = randomPayload(Math.round(a.bigMb * 1e6));
    const name = `${SCRATCH_PREFIX}upload`;
    const series = Math.floor(Date.now() / 1000);
    const totals = { pypi: { bytes: 0, ms: 0, cpuMs: 0 }, base: { bytes: 0, ms: 0, cpuMs: 0 }, fsync: { bytes: 0, ms: 0, cpuMs: 0 } };
    for (let i = 0; i < a.uploads; i++) {
      // 'fsync': the baseline again, syncing the file to disk before it answers (as pypi-lite
      // does): not the baseline of the table, but it tells how much of the gap durability costs.
      const order: ('pypi' | 'base' | 'fsync')[] = i % 2 === 0 ? ['pypi', 'base', 'fsync'] : ['fsync', 'base', 'pypi'];
      for (const t of order) {
        const version = `0.${series}.${i}${t === 'pypi' ? '0' : '1'}`;
        const w = wheelParts(name, version, { payload });
        const size = w.parts.reduce((n, p) => n + p.length, 0);
        const sha256 = w.parts.reduce((h, p) => h.update(p), createHash('sha256')).digest('hex');
        const boundary = `----pypi-lite-bench-${tag}-${i}`;
        const body = multipart(
          boundary,
          [
            [':action', 'file_upload'],
            ['protocol_version', '1'],
            ['name', name],
            ['version', version],
            ['filetype', 'bdist_wheel'],
            ['pyversion', 'py3'],
            ['metadata_version', '2.3'],
            ['sha256_digest', sha256],
          ],
          { field: 'content', filename: w.filename, parts: w.parts },
        );
        const headers = { 'Content-Type': `multipart/form-data; boundary=${boundary}`, Authorization: auth };
        const target = t === 'pypi' ? srv : base;
        const c0 = target.cpuMs() ?? 0;
        const r = await post(t === 'pypi' ? `${srv.url}/` : `${base.url}/upload${t === 'fsync' ? '?fsync=1' : ''}`, headers, body);
        if (r.status !== 200) throw new Error(`upload to ${t}: ${r.status} ${r.message} ${r.body.slice(0, 200)}`);
        totals[t].bytes += size;
        totals[t].ms += r.ms;
        totals[t].cpuMs += (target.cpuMs() ?? 0) - c0;
        if (t === 'pypi') {
          const rm = multipart(boundary, [[':action', 'remove_pkg'], ['name', name], ['version', version]]);
          const d = await post(`${srv.url}/`, { 'Content-Type': `multipart/form-data; boundary=${boundary}`, Authorization: auth }, rm);
          if (d.status !== 200) throw new Error(`remove_pkg: ${d.status} ${d.message}`);
        }
      }
    }
    const p = totals.pypi.bytes / 1e6 / (totals.pypi.ms / 1000);
    const b = totals.base.bytes / 1e6 / (totals.base.ms / 1000);
    const f = totals.fsync.bytes / 1e6 / (totals.fsync.ms / 1000);
    const perGb = (t: { bytes: number; cpuMs: number }) => t.cpuMs / (t.bytes / 1e9);
    cpuRow('upload, CPU per GB', perGb(totals.pypi), perGb(totals.base), 'ms');
    log(
      `upload ${a.bigMb} MB x ${a.uploads}: pypi-lite ${p.toFixed(0)} MB/s (${perGb(totals.pypi).toFixed(0)} ms CPU/GB), baseline ${b.toFixed(0)} MB/s (${perGb(totals.base).toFixed(0)} ms CPU/GB), ` +
        `baseline + fsync ${f.toFixed(0)} MB/s (${perGb(totals.fsync).toFixed(0)} ms CPU/GB)`,
    );
    notes.push(`upload: the baseline with an fsync before answering (as pypi-lite does) reached ${f.toFixed(0)} MB/s (ratio pypi-lite / that ${(p / f).toFixed(2)})`);
    row(`upload ${a.bigMb} MB`, `${p.toFixed(0)} MB/s`, `${b.toFixed(0)} MB/s`, p / b, '>= 0.8 x baseline', p / b >= 0.8);
  }

  // 8. New files copied into the root until all of them are listed.
  if (!a.skip.has('newfiles')) {
    const staged = await stageNewFiles(corpus, a.newFiles, tag);
    const want = new Set(staged.projects);
    const t0 = performance.now();
    let next = 0;
    const copying = Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < staged.files.length) {
          const f = staged.files[next++];
          await fsp.copyFile(path.join(staged.dir, f), path.join(root, f));
        }
      }),
    ).then(() => performance.now() - t0);
    let seen = 0;
    await waitUntil(
      async () => {
        const r = await getJson<{ projects: { name: string }[] }>(`${srv.url}/simple/`, { Accept: PIP_ACCEPT });
        seen = 0;
        for (const p of r.json.projects) if (want.has(normalize(p.name))) seen++;
        return seen === want.size;
      },
      120_000,
      `${a.newFiles} new files visible (saw ${seen})`,
      20,
    );
    const visibleMs = performance.now() - t0;
    const copyMs = await copying;
    log(`${a.newFiles} new files: copied in ${fmtMs(copyMs)}, all listed in /simple/ after ${fmtMs(visibleMs)}`);
    row(`${a.newFiles.toLocaleString('en-US')} new files visible in /simple/`, fmtMs(visibleMs), `${fmtMs(copyMs)} (the copy)`, null, '< 5,000 ms', visibleMs < 5000);
    // Let the server finish reading them before they go (else it warns that they vanished).
    await waitUntil(async () => (await health(srv.url))?.json.hashing === 0, 60_000, 'new files hashed', 50).catch(() => {});
    await Promise.all(staged.files.map((f) => fsp.rm(path.join(root, f), { force: true })));
    await fsp.rm(staged.dir, { recursive: true, force: true });
  }

  // 9. Peak memory.
  await sleep(200);
  const mainRss = srv.peakRss();
  const baseRss = base.peakRss();
  const peak = Math.max(coldRss ?? 0, pagesRss ?? 0, infoRss ?? 0);
  row('peak RSS (VmHWM) over cold start, warm start, page load', `${mb(peak)} MB`, `${mb(baseRss ?? 0)} MB`, null, '< 200 MB', peak < 200e6);
  row('peak RSS (VmHWM) after the UI, download, upload, new files', `${mb(mainRss ?? 0)} MB`, `${mb(baseRss ?? 0)} MB`, null, '(not a target)', null);
  log(
    `peak RSS: cold ${mb(coldRss ?? 0)} MB, warm start + pages ${mb(pagesRss ?? 0)} MB${infoRss ? `, warm start + pages at info ${mb(infoRss)} MB` : ''}, ` +
      `warm after everything ${mb(mainRss ?? 0)} MB, baseline ${mb(baseRss ?? 0)} MB (it holds the captured pages, parsed from one JSON file)`,
  );
  if (srv.warnings().length) notes.push(`the server logged ${srv.warnings().length} warnings, e.g. ${srv.warnings()[0].slice(0, 300)}`);

  await stop(srv);
  await stop(base);

  // 10. The upstream proxy (--upstream), on its own servers once the others are stopped.
  if (!a.skip.has('upstream')) await proxyRows(a, work, htpasswd, profDir);

  const generated = corpus.generatedMs === null ? 'reused' : `generated in ${(corpus.generatedMs / 1000).toFixed(1)} s`;
  process.stdout.write(
    `\npypi-lite benchmark: ${corpus.projects.toLocaleString('en-US')} projects x ${corpus.versions} versions x (wheel + sdist) + one ${mb(corpus.bigFile.size)} MB wheel = ${corpus.files.toLocaleString('en-US')} files, ${mb(corpus.bytes)} MB (corpus ${generated})\n` +
      `node ${process.version}, ${os.availableParallelism()} CPUs; ${LOAD_GENERATOR} ${a.connections} connections, no pipelining, ${a.seconds} s per server and measurement (A B B A rounds of ${SEGMENT_S} s segments)\n\n` +
      `${table()}\n\n` +
      `CPU time of the server processes (all threads), which other load on the machine disturbs far less than wall-clock speed; ratio = baseline / pypi-lite (1 = as cheap as the baseline):\n\n` +
      `${markdown(['metric', 'pypi-lite', 'baseline', 'ratio'], cpuRows.map((r) => [r.metric, r.pypi, r.base, r.ratio]))}\n`,
  );
  if (notes.length) process.stdout.write(`\nnotes:\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
  const missed = rows.filter((r) => r.ok === false).map((r) => r.metric);
  process.stdout.write(`\n${missed.length ? `missed targets: ${missed.join('; ')}` : 'every target met'}\n`);
  process.stdout.write(`total time ${((performance.now() - T0) / 1000).toFixed(0)} s\n`);

  if (profDir) {
    process.stdout.write(`\nCPU profiles in ${profDir}:\n\n`);
    for (const sub of ['cold', 'warm', 'info', 'proxy']) {
      const dir = path.join(profDir, sub);
      const files = await profileFiles([dir]).catch(() => []);
      for (const f of files) {
        const s = await summarize(f, 15);
        if (s.busyMs < 200) continue;
        process.stdout.write(`[${sub}] ${formatSummary(s)}\n\n`);
      }
    }
  } else {
    await fsp.rm(work, { recursive: true, force: true });
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`bench: ${sig}, stopping the servers\n`);
    void Promise.all([...running].map((p) => p.stop().catch(() => {}))).then(() => process.exit(130));
  });
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    await Promise.all([...running].map((p) => p.stop().catch(() => {})));
    process.exit(1);
  },
);
