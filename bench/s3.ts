// `npm run bench -- --s3 [--objects N] [--big-mb M] [--duration S] [--connections C]`: pypi-lite
// replicas on one bucket of the Ceph RGW harness (test/helpers/rgw.ts, in-memory OSD).
//
//   1. N small wheels put into the bucket with the raw SDK (32 in flight), as `aws s3 sync` would
//   2. replica A's cold start: listing + reading every object once (digests, metadata)
//   3. replica B's warm start: listing + the bucket's index (objects read for digests: 0)
//   4. page req/s and CPU per request on A and B against a pypi-lite over the same files in a
//      local directory
//   5. upload and download MB/s of one big wheel through a replica against the raw SDK doing
//      the same transfer (PutObject / GetObject of the same bytes)
//   6. cross-replica propagation: an upload through A until it is on B's page (median of 10)
//
// The memstore OSD keeps about twice the stored bytes in RAM: the objects are ~1 KB wheels.

import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startRgw, rgwUnavailable } from '../test/helpers/rgw.js';
import { projectName, wheel, wheelParts } from './dists.js';
import { mb, randomPayload } from './corpus.js';
import { load, shuffle } from './load.js';
import { BIN, download, get, PIP_ACCEPT, post, startPypiLite, waitUntil, type Proc } from './procs.js';
import { spawn } from 'node:child_process';

interface S3Args {
  objects: number;
  bigMb: number;
  seconds: number;
  connections: number;
  sample: number;
}

function parse(argv: string[]): S3Args {
  const a: S3Args = { objects: 100_000, bigMb: 50, seconds: 10, connections: 32, sample: 2000 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--s3') continue;
    const v = Number(argv[++i]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${k} needs a positive number (--s3 takes --objects, --big-mb, --duration, --connections, --sample)`);
    if (k === '--objects') a.objects = Math.floor(v);
    else if (k === '--big-mb') a.bigMb = v;
    else if (k === '--duration') a.seconds = v;
    else if (k === '--connections') a.connections = Math.floor(v);
    else if (k === '--sample') a.sample = Math.floor(v);
    else throw new Error(`unknown option ${k} with --s3`);
  }
  return a;
}

const log = (msg: string): void => void process.stdout.write(`[bench s3] ${msg}\n`);
const fmt = (ms: number): string => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);

async function metric(url: string, name: string): Promise<number> {
  const r = await get(`${url}/metrics`);
  const m = new RegExp(`^${name} (\\d+(?:\\.\\d+)?)`, 'm').exec(r.body.toString());
  return m ? Number(m[1]) : NaN;
}

async function health(url: string): Promise<{ status: number; hashing: number; files: number } | null> {
  const r = await get(`${url}/health`).catch(() => null);
  if (!r) return null;
  try {
    const j = JSON.parse(r.body.toString()) as { hashing: number; files: number };
    return { status: r.status, hashing: j.hashing, files: j.files };
  } catch {
    return null;
  }
}

/** Spawned-to-loaded and spawned-to-idle (every file hashed) times of a replica. */
async function startTimes(p: Proc, files: number): Promise<{ loadedMs: number; idleMs: number }> {
  let loadedMs = 0;
  await waitUntil(
    async () => {
      const h = await health(p.url);
      if (h?.status === 200 && !loadedMs) loadedMs = performance.now() - p.spawnedAt;
      return h?.status === 200 && h.hashing === 0 && h.files >= files;
    },
    3_600_000,
    `${p.name} idle`,
    50,
  );
  return { loadedMs, idleMs: performance.now() - p.spawnedAt };
}

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

export async function runS3Bench(argv: string[]): Promise<void> {
  const why = rgwUnavailable();
  if (why) throw new Error(why);
  const a = parse(argv);
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-bench-s3-'));
  const procs: Proc[] = [];
  // The memstore OSD holds the objects twice over in RAM: room for them and the big file.
  process.env.RGW_MEMSTORE_BYTES ??= String(Math.max(4 * 1024 ** 3, Math.ceil((a.objects * 4096 + a.bigMb * 4e6) * 2)));
  const rgw = await startRgw();
  const s3: S3Client = rgw.client();
  Object.assign(process.env, rgw.env);
  try {
    await rgw.createBucket('bench');
    const htpasswd = path.join(work, 'htpasswd');
    const password = 'bench-password';
    await new Promise<void>((resolve, reject) => {
      const c = spawn(process.execPath, [BIN, 'passwd', htpasswd, 'bench', '--password-stdin'], { stdio: ['pipe', 'ignore', 'inherit'] });
      c.stdin.end(password);
      c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error('pypi-lite passwd failed'))));
    });
    const auth = `Basic ${Buffer.from(`bench:${password}`).toString('base64')}`;

    // 1. N objects, and the same files in a local directory (the baseline).
    const local = path.join(work, 'local-root');
    await fsp.mkdir(local);
    const versions = 2;
    const projects = Math.ceil(a.objects / versions);
    const keys: string[] = [];
    for (let i = 0; i < projects; i++) for (let j = 0; j < versions && keys.length < a.objects; j++) keys.push(`${i}|${j}`);
    let t0 = performance.now();
    await pool(keys, 32, async (k) => {
      const [i, j] = k.split('|').map(Number);
      const name = projectName(i);
      const w = wheel(name, `1.${j}`);
      const key = `${name}/${w.filename}`;
      await s3.send(new PutObjectCommand({ Bucket: 'bench', Key: `pypi/${key}`, Body: w.data }));
      await fsp.mkdir(path.join(local, name), { recursive: true });
      await fsp.writeFile(path.join(local, key), w.data);
    });
    const putMs = performance.now() - t0;
    log(`${a.objects} objects (${projects} projects) put with the raw SDK, 32 in flight: ${fmt(putMs)} (${Math.round(a.objects / (putMs / 1000))} PUT/s)`);

    const replica = async (name: string, extra: string[] = []): Promise<Proc> => {
      const p = await startPypiLite({ root: 's3://bench/pypi', cacheDir: path.join(work, `cache-${name}`), htpasswd, logLevel: 'warn', name, extraArgs: ['--s3-path-style', ...extra] });
      procs.push(p);
      return p;
    };

    // 2. Replica A cold, 3. replica B warm (after A's feed is written).
    const A = await replica('replica A');
    const cold = await startTimes(A, a.objects);
    log(`replica A cold start: loaded in ${fmt(cold.loadedMs)}, every object hashed in ${fmt(cold.idleMs)} (objects read for digests: ${await metric(A.url, 'pypi_lite_files_hashed')}), CPU ${fmt(A.cpuMs() ?? 0)}`);
    await new Promise((r) => setTimeout(r, 1500));
    const B = await replica('replica B');
    const warm = await startTimes(B, a.objects);
    log(`replica B warm start: loaded and serving every hash in ${fmt(warm.idleMs)} (listing: ${Math.ceil(a.objects / 1000)} pages; objects read for digests: ${await metric(B.url, 'pypi_lite_files_hashed')}), CPU ${fmt(B.cpuMs() ?? 0)}, peak RSS ${mb(B.peakRss() ?? 0)} MB`);
    const L = (await startPypiLite({ root: local, cacheDir: path.join(work, 'cache-local'), htpasswd, logLevel: 'warn', name: 'local directory' }));
    procs.push(L);
    await startTimes(L, a.objects);

    // 4. Pages.
    const sample = shuffle(Array.from({ length: projects }, (_, i) => `/simple/${projectName(i).toLowerCase().replace(/[-_.]+/g, '-')}/`), 7).slice(0, a.sample);
    for (const p of [L, A, B]) for (const s of sample) await get(`${p.url}${s}`, { Accept: PIP_ACCEPT });
    const rows: string[] = [];
    for (const p of [L, A, B]) {
      const cpu0 = p.cpuMs() ?? 0;
      const r = await load(p.url, { paths: sample, headers: { Accept: PIP_ACCEPT }, seconds: a.seconds, connections: a.connections });
      const cpu = (p.cpuMs() ?? 0) - cpu0;
      rows.push(`${p.name}: ${Math.round(r.rps)} req/s, ${((cpu / Math.max(1, r.requests)) * 1000).toFixed(0)} µs CPU/request, p99 ${r.p99} ms, non-2xx ${r.non2xx}`);
    }
    log(`project pages (${sample.length} projects, ${a.connections} connections, ${a.seconds} s):\n  ${rows.join('\n  ')}`);

    // 5. One big wheel: upload through A vs PutObject; download through B vs GetObject.
    const payload = randomPayload(Math.round(a.bigMb * 1e6));
    const big = wheelParts('bench-s3-big', '1.0', { payload });
    const bigBytes = big.parts.reduce((n, b) => n + b.length, 0);
    const body = Buffer.concat(big.parts);
    t0 = performance.now();
    await s3.send(new PutObjectCommand({ Bucket: 'bench', Key: 'raw/big.whl', Body: body, ContentLength: bigBytes }));
    const rawPut = performance.now() - t0;
    t0 = performance.now();
    const r = await s3.send(new GetObjectCommand({ Bucket: 'bench', Key: 'raw/big.whl' }));
    await r.Body?.transformToByteArray();
    const rawGet = performance.now() - t0;
    const boundary = 'benchs3boundary';
    const field = (n: string, v: string) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${n}"\r\n\r\n${v}\r\n`);
    const form = [
      field(':action', 'file_upload'), field('protocol_version', '1'), field('name', 'bench-s3-big'), field('version', '1.0'), field('filetype', 'bdist_wheel'), field('pyversion', 'py3'),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="${big.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
      ...big.parts,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ];
    const up = await post(`${A.url}/`, { Authorization: auth, 'Content-Type': `multipart/form-data; boundary=${boundary}` }, form);
    if (up.status !== 200) throw new Error(`big upload: ${up.status} ${up.message}`);
    await waitUntil(async () => (await get(`${B.url}/simple/bench-s3-big/`)).status === 200, 10_000, 'big wheel on B');
    const dl = await download(`${B.url}/packages/${big.filename}`);
    const rate = (ms: number) => (bigBytes / 1e6 / (ms / 1000)).toFixed(0);
    log(`${mb(bigBytes)} MB wheel: upload through A ${fmt(up.ms)} (${rate(up.ms)} MB/s) vs raw PutObject ${fmt(rawPut)} (${rate(rawPut)} MB/s); download through B ${fmt(dl.ms)} (${rate(dl.ms)} MB/s, status ${dl.status}) vs raw GetObject ${fmt(rawGet)} (${rate(rawGet)} MB/s)`);

    // 6. Propagation A -> B.
    const times: number[] = [];
    for (let k = 0; k < 10; k++) {
      const w = wheel('bench-s3-prop', `2.${k}`);
      const parts = [
        field(':action', 'file_upload'), field('protocol_version', '1'), field('name', 'bench-s3-prop'), field('version', `2.${k}`), field('filetype', 'bdist_wheel'), field('pyversion', 'py3'),
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="${w.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
        w.data,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ];
      const u = await post(`${A.url}/`, { Authorization: auth, 'Content-Type': `multipart/form-data; boundary=${boundary}` }, parts);
      if (u.status !== 200) throw new Error(`propagation upload: ${u.status} ${u.message}`);
      const t = performance.now();
      await waitUntil(async () => (await get(`${B.url}/simple/bench-s3-prop/`)).body.toString().includes(w.filename), 30_000, 'propagation', 10);
      times.push(performance.now() - t);
      await new Promise((res) => setTimeout(res, 137 * (k + 1)));
    }
    times.sort((x, y) => x - y);
    log(`propagation (upload through A answered -> on B's page), 10 uploads: median ${fmt(times[5])}, min ${fmt(times[0])}, max ${fmt(times[9])}`);
  } finally {
    for (const p of procs) await p.stop();
    s3.destroy();
    await rgw.stop();
    await fsp.rm(work, { recursive: true, force: true });
  }
}
