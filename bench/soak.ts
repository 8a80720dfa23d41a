// Soak test: the real server under a mixed, concurrent load for a while, then a check of the
// invariants a package index must keep no matter what:
//
//   - every acknowledged (200) upload is on disk, byte-identical, and listed with its sha256;
//   - an upload whose connection was cut mid-body never becomes a file;
//   - the same file name with different bytes is refused (409), also when two race;
//   - no temp file (.pypi-lite-upload-*) is left behind;
//   - no request is answered with a 5xx, no connection is dropped without an answer;
//   - every downloaded file matches the sha256 its project page announced;
//   - files copied into / deleted from the root behind the server's back end up listed exactly;
//   - the memory (VmRSS) does not grow without bound; the server shuts down cleanly.
//
//   node dist/bench/soak.js [--seconds 60] [--uploaders 8] [--readers 32]
//
// `runSoak()` is exported so that test/soak.test.ts runs a short variant in the test suite.
// The helpers that build wheels and multipart bodies are exported too (test/crash.test.ts).

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BIN, spawnServer, waitHealthy, type Spawned } from '../test/helpers/server.js';
import { zipParts } from './zip.js';

export const TEMP_PREFIX = '.pypi-lite-upload-';

// ---------------------------------------------------------------------------------------------
// Wheels built with the bench's zip writer (bench/zip.ts).

export function sha256(data: Buffer | Buffer[]): string {
  const h = createHash('sha256');
  for (const b of Array.isArray(data) ? data : [data]) h.update(b);
  return h.digest('hex');
}

export interface Wheel {
  /** project name as given */
  name: string;
  version: string;
  filename: string;
  /** the archive (several buffers: a big payload is not copied) */
  parts: Buffer[];
  size: number;
  sha256: string;
}

/** The wheel escape of a project name (PEP 427): runs of -_. become one _, lower-case. */
export function wheelName(name: string): string {
  return name.replace(/[-_.]+/g, '_').toLowerCase();
}

/** A valid wheel: `<name>-<ver>.dist-info/METADATA` (+ WHEEL) and a payload entry. */
export function buildWheel(name: string, version: string, payload: Buffer = randomBytes(256), opts: { store?: boolean; summary?: string } = {}): Wheel {
  const esc = wheelName(name);
  const distInfo = `${esc}-${version}.dist-info`;
  const metadata = Buffer.from(`Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\nSummary: ${opts.summary ?? 'soak test package'}\n\n`);
  const wheelMeta = Buffer.from('Wheel-Version: 1.0\nGenerator: pypi-lite-soak\nRoot-Is-Purelib: true\nTag: py3-none-any\n');
  const parts = zipParts([
    { name: `${esc}/__init__.py`, data: Buffer.from(`__version__ = "${version}"\n`) },
    { name: `${esc}/payload.bin`, data: payload, store: opts.store ?? true },
    { name: `${distInfo}/METADATA`, data: metadata },
    { name: `${distInfo}/WHEEL`, data: wheelMeta },
  ]);
  return {
    name,
    version,
    filename: `${esc}-${version}-py3-none-any.whl`,
    parts,
    size: parts.reduce((n, b) => n + b.length, 0),
    sha256: sha256(parts),
  };
}

/** A multipart/form-data body as twine sends it (fields first, then `content`). */
export function uploadBody(w: Wheel, extra: [string, string][] = []): { contentType: string; parts: Buffer[]; length: number } {
  const boundary = `----pypi-lite-soak-${randomBytes(12).toString('hex')}`;
  const fields: [string, string][] = [
    [':action', 'file_upload'],
    ['protocol_version', '1'],
    ['name', w.name],
    ['version', w.version],
    ['filetype', 'bdist_wheel'],
    ['pyversion', 'py3'],
    ['metadata_version', '2.1'],
    ['sha256_digest', w.sha256],
    ...extra,
  ];
  let head = '';
  for (const [k, v] of fields) head += `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`;
  head += `--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="${w.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  const parts = [Buffer.from(head), ...w.parts, Buffer.from(`\r\n--${boundary}--\r\n`)];
  return { contentType: `multipart/form-data; boundary=${boundary}`, parts, length: parts.reduce((n, b) => n + b.length, 0) };
}

// ---------------------------------------------------------------------------------------------
// HTTP with node:http (no fetch: we need to cut connections mid-body and to see every status).

export interface HttpResult {
  status: number;
  reason: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface SendOptions {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Buffer[];
  agent?: http.Agent | false;
  /** send the body in slices of this size, pausing between them */
  throttle?: { chunk: number; delayMs: number; onProgress?: (sent: number) => void; stop?: () => boolean };
  /** cut the connection after this many body bytes (resolves with null) */
  abortAfter?: number;
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * One request. Resolves with the response, or with null when we cut the connection ourselves
 * (abortAfter). Rejects when the connection fails without a response.
 */
export function send(url: string, reqPath: string, o: SendOptions = {}): Promise<HttpResult | null> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    let settled = false;
    let aborting = false;
    const finish = (v: HttpResult | null, err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(v);
    };
    const req = http.request({ host: u.hostname, port: Number(u.port), path: reqPath, method: o.method ?? 'GET', headers: o.headers, agent: o.agent ?? false });
    const timer = setTimeout(() => {
      finish(null, new Error(`no response within ${o.timeoutMs ?? 60_000} ms for ${o.method ?? 'GET'} ${reqPath}`));
      req.destroy();
    }, o.timeoutMs ?? 60_000);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (err) => finish(null, aborting ? undefined : err));
      res.on('aborted', () => finish(null, aborting ? undefined : new Error(`response to ${reqPath} aborted`)));
    });
    req.on('error', (err) => finish(null, aborting ? undefined : err));
    void (async () => {
      try {
        let sent = 0;
        for (const whole of o.body ?? []) {
          const step = o.throttle ? o.throttle.chunk : Math.max(1, whole.length);
          for (let off = 0; off < whole.length; off += step) {
            if (settled) return;
            let piece = whole.subarray(off, Math.min(whole.length, off + step));
            if (o.abortAfter !== undefined && sent + piece.length >= o.abortAfter) {
              piece = piece.subarray(0, Math.max(0, o.abortAfter - sent));
              if (piece.length) req.write(piece);
              aborting = true;
              await sleep(20);
              req.destroy();
              finish(null);
              return;
            }
            if (!req.write(piece)) await new Promise<void>((r) => req.once('drain', r));
            sent += piece.length;
            if (o.throttle) {
              o.throttle.onProgress?.(sent);
              if (o.throttle.stop?.()) return;
              await sleep(o.throttle.delayMs);
            }
          }
        }
        req.end();
      } catch (err) {
        finish(null, err as Error);
      }
    })();
  });
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** POST a wheel to the upload endpoint. */
export function upload(url: string, w: Wheel, o: Omit<SendOptions, 'body' | 'method'> & { auth?: string } = {}): Promise<HttpResult | null> {
  const b = uploadBody(w);
  const headers: Record<string, string | number> = { 'Content-Type': b.contentType, 'Content-Length': b.length, ...(o.headers ?? {}) };
  if (o.auth) headers.Authorization = o.auth;
  return send(url, '/legacy/', { ...o, method: 'POST', headers, body: b.parts });
}

export interface ListedFile {
  filename: string;
  url: string;
  sha256: string;
}

/** Parse a project page (PEP 691 JSON or PEP 503 HTML) into absolute file URLs and hashes. */
export function parseProjectPage(pageUrl: string, res: HttpResult): ListedFile[] {
  const type = String(res.headers['content-type'] ?? '');
  const text = res.body.toString('utf8');
  if (type.includes('json')) {
    const data = JSON.parse(text) as { files: { filename: string; url: string; hashes: { sha256?: string } }[] };
    return data.files.map((f) => ({ filename: f.filename, url: new URL(f.url, pageUrl).href, sha256: f.hashes.sha256 ?? '' }));
  }
  const out: ListedFile[] = [];
  const re = /<a\s[^>]*href="([^"]*)"[^>]*>([^<]*)<\/a>/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const href = m[1].replace(/&amp;/g, '&');
    const abs = new URL(href, pageUrl);
    const hash = /^#sha256=([0-9a-f]{64})$/.exec(abs.hash)?.[1] ?? '';
    abs.hash = '';
    out.push({ filename: m[2], url: abs.href, sha256: hash });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The file shuffler (run as its own process by runSoak): what an admin or a sync job does to a
// package directory behind the server's back. New files get new names; some arrive in two
// writes (a slow copy), the others by copyFile from a staging directory.

export interface ShuffleResult {
  copies: number;
  deletes: number;
  /** the shuffled files still in the root at the end */
  live: string[];
  errors: string[];
}

export async function shuffleFiles(root: string, staging: string, untilMs: number): Promise<ShuffleResult> {
  const live = new Set<string>();
  const r: ShuffleResult = { copies: 0, deletes: 0, live: [], errors: [] };
  for (let n = 0; Date.now() < untilMs; n++) {
    try {
      if (live.size < 6 || (live.size < 30 && Math.random() < 0.55)) {
        const w = buildWheel('soak-churn', `1.0.${n}`, randomBytes(4096 + Math.floor(Math.random() * 64 * 1024)));
        const bytes = Buffer.concat(w.parts);
        const dest = path.join(root, w.filename);
        if (n % 3 === 0) {
          const fh = await fsp.open(dest, 'wx');
          await fh.write(bytes.subarray(0, bytes.length >> 1));
          await sleep(40);
          await fh.write(bytes.subarray(bytes.length >> 1));
          await fh.close();
        } else {
          const src = path.join(staging, w.filename);
          await fsp.writeFile(src, bytes);
          await fsp.copyFile(src, dest);
          await fsp.rm(src);
        }
        live.add(w.filename);
        r.copies++;
      } else {
        const victim = pick([...live]);
        await fsp.rm(path.join(root, victim));
        live.delete(victim);
        r.deletes++;
      }
    } catch (err) {
      if (r.errors.length < 20) r.errors.push((err as Error).message);
    }
    await sleep(20 + Math.random() * 40);
  }
  r.live = [...live];
  return r;
}

// ---------------------------------------------------------------------------------------------
// The soak run.

export interface SoakOptions {
  seconds: number;
  uploaders?: number;
  readers?: number;
  /** copy files into / delete files from the root behind the server's back */
  churn?: boolean;
  /** progress lines (default: none) */
  log?: (line: string) => void;
}

export interface SoakCounts {
  uploadsOk: number;
  uploadsIdentical: number;
  uploads409: number;
  racesResolved: number;
  uploadsAborted: number;
  pageReads: number;
  downloadsVerified: number;
  downloadsGone: number;
  copies: number;
  deletes: number;
  status5xx: number;
  maxRssMB: number;
  firstQuarterRssMB: number;
  lastQuarterRssMB: number;
  ackedChecked: number;
}

export interface SoakResult {
  counts: SoakCounts;
  /** every broken invariant, human-readable; empty when the run passed */
  failures: string[];
  rssSamplesMB: number[];
}

const JSON_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';

interface Ack {
  filename: string;
  project: string;
  sha256: string;
  size: number;
}

function readRssKB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function makePasswordFile(file: string, user: string, password: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, 'passwd', file, user, '--password-stdin', '--rounds', '4'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pypi-lite passwd failed (${code}): ${err}`))));
    p.stdin.end(`${password}\n`);
  });
}

async function listTemps(root: string): Promise<string[]> {
  return (await fsp.readdir(root)).filter((n) => n.startsWith(TEMP_PREFIX));
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)];

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const seconds = opts.seconds;
  const nUploaders = opts.uploaders ?? 8;
  const nReaders = opts.readers ?? 32;
  const churn = opts.churn ?? true;
  const log = opts.log ?? (() => {});
  const failures: string[] = [];
  const fail = (msg: string) => {
    if (failures.length < 200) failures.push(msg);
  };
  const counts: SoakCounts = {
    uploadsOk: 0,
    uploadsIdentical: 0,
    uploads409: 0,
    racesResolved: 0,
    uploadsAborted: 0,
    pageReads: 0,
    downloadsVerified: 0,
    downloadsGone: 0,
    copies: 0,
    deletes: 0,
    status5xx: 0,
    maxRssMB: 0,
    firstQuarterRssMB: 0,
    lastQuarterRssMB: 0,
    ackedChecked: 0,
  };

  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'pypi-lite-soak-'));
  const root = path.join(work, 'root');
  const staging = path.join(work, 'staging');
  await fsp.mkdir(root);
  await fsp.mkdir(staging);
  const pwfile = path.join(work, 'htpasswd');
  const user = 'soak';
  const password = randomBytes(9).toString('base64url');
  await makePasswordFile(pwfile, user, password);
  const auth = basicAuth(user, password);

  // Some packages before the start.
  const SEED_PROJECTS = ['soak-seed-a', 'soak-seed-b', 'soak-seed-c'];
  for (const p of SEED_PROJECTS) {
    for (let v = 0; v < 4; v++) {
      const w = buildWheel(p, `0.${v}.0`, randomBytes(2048 + v * 1000));
      await fsp.writeFile(path.join(root, w.filename), Buffer.concat(w.parts));
    }
  }

  let server: Spawned | null = null;
  let shufflerProc: ChildProcess | null = null;
  let rssTimer: NodeJS.Timeout | null = null;
  const rss: number[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: nReaders + 8 });
  try {
    server = await spawnServer([root, '-P', pwfile, '--disable-fallback', '--log-level', 'warn']);
    const url = server.url;
    await waitHealthy(url, { idle: true });
    const t0 = Date.now();
    const phase = (what: string) => log(`  [${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}`);
    phase('server up, load starts');
    const pid = server.proc.pid!;
    rssTimer = setInterval(() => {
      const kb = readRssKB(pid);
      if (kb !== null) rss.push(kb / 1024);
    }, 1000);

    const note5xx = (what: string, r: HttpResult) => {
      if (r.status >= 500) {
        counts.status5xx++;
        fail(`${what}: ${r.status} ${r.reason}`);
      }
    };

    const deadline = Date.now() + seconds * 1000;
    const running = () => Date.now() < deadline;
    const acks = new Map<string, Ack>();
    const ackedProjects = new Set<string>();
    const lastBytes = new Map<number, Wheel>(); // per uploader: its last acknowledged wheel
    const abortedNames = new Set<string>();
    const uploadProjects = ['soak-up-0', 'soak-up-1', 'soak-up-2', 'soak-up-3'];
    const readableProjects = [...SEED_PROJECTS, ...uploadProjects, 'soak-churn'];

    // ---- uploaders
    const uploader = async (w: number) => {
      for (let i = 0; running(); i++) {
        const project = uploadProjects[(w + i) % uploadProjects.length];
        const version = `${w + 1}.${i}.0`;
        const payload = () => randomBytes(1024 + Math.floor(Math.random() * 48 * 1024));
        try {
          if (i % 10 === 3) {
            // Two different files under one new name, racing: exactly one wins, the other is 409.
            const a = buildWheel(project, `${version}.1`, payload());
            const b = buildWheel(project, `${version}.1`, payload());
            const [ra, rb] = await Promise.all([upload(url, a, { auth }), upload(url, b, { auth })]);
            if (!ra || !rb) throw new Error('no response');
            note5xx('race upload', ra);
            note5xx('race upload', rb);
            const statuses = [ra.status, rb.status].sort().join(',');
            if (statuses !== '200,409') {
              fail(`race on ${a.filename}: expected one 200 and one 409, got ${ra.status} "${ra.reason}" / ${rb.status} "${rb.reason}"`);
              continue;
            }
            const winner = ra.status === 200 ? a : b;
            acks.set(winner.filename, { filename: winner.filename, project, sha256: winner.sha256, size: winner.size });
            ackedProjects.add(project);
            counts.uploadsOk++;
            counts.uploads409++;
            counts.racesResolved++;
            continue;
          }
          const prev = lastBytes.get(w);
          if (i % 10 === 6 && prev) {
            // Same file name, different bytes: must be refused and must not change the file.
            const clash = buildWheel(prev.name, prev.version, payload());
            const r = await upload(url, clash, { auth });
            if (!r) throw new Error('no response');
            note5xx('conflicting upload', r);
            if (r.status === 409) counts.uploads409++;
            else fail(`re-upload of ${clash.filename} with different bytes: expected 409, got ${r.status} "${r.reason}"`);
            continue;
          }
          if (i % 10 === 9 && prev) {
            // Same file name, same bytes: PyPI answers 200 and so must we.
            const r = await upload(url, prev, { auth });
            if (!r) throw new Error('no response');
            note5xx('identical re-upload', r);
            if (r.status === 200) counts.uploadsIdentical++;
            else fail(`identical re-upload of ${prev.filename}: expected 200, got ${r.status} "${r.reason}"`);
            continue;
          }
          if (i % 10 === 7) {
            // Cut the connection in the middle of the body.
            const big = buildWheel(project, `${version}.7`, randomBytes(256 * 1024 + Math.floor(Math.random() * 768 * 1024)));
            abortedNames.add(big.filename);
            const b = uploadBody(big);
            const r = await send(url, '/legacy/', {
              method: 'POST',
              headers: { 'Content-Type': b.contentType, 'Content-Length': b.length, Authorization: auth },
              body: b.parts,
              throttle: { chunk: 64 * 1024, delayMs: 1 },
              abortAfter: Math.floor(b.length * (0.2 + Math.random() * 0.75)),
            });
            if (r) {
              note5xx('aborted upload', r);
              fail(`aborted upload of ${big.filename} got a response: ${r.status} "${r.reason}"`);
            } else counts.uploadsAborted++;
            continue;
          }
          const wh = buildWheel(project, version, payload());
          const r = await upload(url, wh, { auth });
          if (!r) throw new Error('no response');
          note5xx('upload', r);
          if (r.status === 200) {
            acks.set(wh.filename, { filename: wh.filename, project, sha256: wh.sha256, size: wh.size });
            ackedProjects.add(project);
            lastBytes.set(w, wh);
            counts.uploadsOk++;
          } else fail(`upload of ${wh.filename}: expected 200, got ${r.status} "${r.reason}"`);
        } catch (err) {
          fail(`uploader ${w}: ${(err as Error).message}`);
          await sleep(50);
        }
      }
    };

    // ---- readers
    const reader = async (k: number) => {
      for (let i = 0; running(); i++) {
        const project = pick(readableProjects);
        const pageUrl = `${url}/simple/${project}/`;
        try {
          if (i % 25 === 0) {
            const r = await send(url, '/simple/', { agent, headers: { Accept: JSON_ACCEPT } });
            if (!r) throw new Error('no response');
            note5xx('GET /simple/', r);
            if (r.status !== 200) fail(`GET /simple/: ${r.status}`);
            counts.pageReads++;
            continue;
          }
          const accept = (k + i) % 2 ? JSON_ACCEPT : 'text/html';
          const ackedBefore = ackedProjects.has(project);
          const page = await send(url, `/simple/${project}/`, { agent, headers: { Accept: accept } });
          if (!page) throw new Error('no response');
          note5xx(`GET /simple/${project}/`, page);
          counts.pageReads++;
          // 404 only for a project nothing was uploaded to yet, or whose shuffled files are all gone.
          if (page.status === 404 && (project === 'soak-churn' || (uploadProjects.includes(project) && !ackedBefore))) continue;
          if (page.status !== 200) {
            fail(`GET /simple/${project}/ (${accept}): ${page.status} "${page.reason}"`);
            continue;
          }
          const files = parseProjectPage(pageUrl, page);
          if (!files.length) continue;
          const f = pick(files);
          if (!/^[0-9a-f]{64}$/.test(f.sha256)) {
            // Seen: PageCache.project() renders once Indexer.ensureHashed() resolves, but that
            // waits only for the files that were hashing when it was called, not for one added
            // meanwhile (lib/simple/pages.ts + lib/catalog/indexer.ts).
            fail(`${f.filename} listed without a sha256 on /simple/${project}/ (${accept.includes('json') ? 'JSON' : 'HTML'}): a page was served before all its files were hashed`);
            continue;
          }
          const dl = await send(url, new URL(f.url).pathname, { agent });
          if (!dl) throw new Error('no response');
          note5xx(`GET ${f.filename}`, dl);
          if (dl.status === 404 && project === 'soak-churn') {
            counts.downloadsGone++;
            continue;
          }
          if (dl.status !== 200) {
            fail(`download of ${f.filename}: ${dl.status} "${dl.reason}"`);
            continue;
          }
          const got = sha256(dl.body);
          if (got !== f.sha256) fail(`download of ${f.filename}: sha256 ${got} but the page says ${f.sha256}`);
          else counts.downloadsVerified++;
        } catch (err) {
          fail(`reader ${k}: ${(err as Error).message}`);
          await sleep(50);
        }
      }
    };

    // ---- the file shuffler: another process copying into and deleting from the root
    let shuffled: ShuffleResult = { copies: 0, deletes: 0, live: [], errors: [] };
    const shuffler = async () => {
      const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--shuffle', root, staging, String(deadline)], { stdio: ['ignore', 'pipe', 'pipe'] });
      shufflerProc = child;
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      try {
        shuffled = JSON.parse(out.trim().split('\n').at(-1) ?? '') as ShuffleResult;
      } catch {
        fail(`shuffler process exited with ${code}: ${err.slice(0, 500)}`);
      }
      counts.copies = shuffled.copies;
      counts.deletes = shuffled.deletes;
      for (const e of shuffled.errors) fail(`shuffler: ${e}`);
    };

    const progress = setInterval(() => {
      log(`  ${Math.round((deadline - Date.now()) / 1000)}s left: ${counts.uploadsOk} uploads, ${counts.pageReads} reads, ${counts.downloadsVerified} downloads, rss ${rss.at(-1)?.toFixed(0) ?? '?'} MB`);
    }, 10_000);
    try {
      await Promise.all([
        ...Array.from({ length: nUploaders }, (_, w) => uploader(w)),
        ...Array.from({ length: nReaders }, (_, k) => reader(k)),
        churn ? shuffler() : Promise.resolve(),
      ]);
    } finally {
      clearInterval(progress);
    }
    clearInterval(rssTimer);
    rssTimer = null;

    // ---- the invariants, once the dust has settled
    phase('load done, checking the invariants');
    await waitHealthy(url, { idle: true, timeoutMs: 30_000 });

    // No temp files (an aborted upload is cleaned up asynchronously: give it a moment).
    let temps = await listTemps(root);
    for (let t = 0; temps.length && t < 40; t++) {
      await sleep(100);
      temps = await listTemps(root);
    }
    if (temps.length) fail(`temp files left in the root: ${temps.join(', ')}`);

    // Aborted uploads never became files.
    const onDisk = new Set(await fsp.readdir(root));
    for (const name of abortedNames) if (onDisk.has(name)) fail(`aborted upload ${name} is on disk`);

    // Every acknowledged upload: on disk, byte-identical, listed with the right hash.
    const listings = new Map<string, Map<string, string>>();
    for (const project of uploadProjects) {
      const r = await send(url, `/simple/${project}/`, { headers: { Accept: JSON_ACCEPT } });
      if (!r || r.status !== 200) {
        if ([...acks.values()].some((a) => a.project === project)) fail(`GET /simple/${project}/ after the run: ${r?.status}`);
        continue;
      }
      listings.set(project, new Map(parseProjectPage(`${url}/simple/${project}/`, r).map((f) => [f.filename, f.sha256])));
    }
    for (const a of acks.values()) {
      let bytes: Buffer;
      try {
        bytes = await fsp.readFile(path.join(root, a.filename));
      } catch {
        fail(`acknowledged upload ${a.filename} is not on disk`);
        continue;
      }
      if (sha256(bytes) !== a.sha256) fail(`acknowledged upload ${a.filename} differs on disk (sha256 ${sha256(bytes)}, sent ${a.sha256})`);
      const listed = listings.get(a.project)?.get(a.filename);
      if (listed === undefined) fail(`acknowledged upload ${a.filename} is not listed on /simple/${a.project}/`);
      else if (listed !== a.sha256) fail(`acknowledged upload ${a.filename} is listed with sha256 ${listed}, sent ${a.sha256}`);
      counts.ackedChecked++;
    }
    // Nothing listed that was not acknowledged (aborted or refused uploads must not show up).
    for (const [project, files] of listings) {
      for (const name of files.keys()) if (!acks.has(name)) fail(`/simple/${project}/ lists ${name}, which was never acknowledged`);
    }

    // The shuffled files: once the watcher has settled, the page lists exactly what is on disk.
    if (churn) {
      let problem = '';
      for (let t = 0; t < 50; t++) {
        await waitHealthy(url, { idle: true, timeoutMs: 30_000 });
        const disk = new Map<string, string>();
        for (const name of shuffled.live) disk.set(name, sha256(await fsp.readFile(path.join(root, name))));
        const r = await send(url, '/simple/soak-churn/', { headers: { Accept: JSON_ACCEPT } });
        const listed = r && r.status === 200 ? new Map(parseProjectPage(`${url}/simple/soak-churn/`, r).map((f) => [f.filename, f.sha256])) : new Map<string, string>();
        const missing = [...disk.keys()].filter((n) => listed.get(n) !== disk.get(n));
        const extra = [...listed.keys()].filter((n) => !disk.has(n));
        problem = missing.length || extra.length ? `/simple/soak-churn/ does not match the disk: missing/wrong ${missing.join(' ')}; deleted but listed ${extra.join(' ')}` : '';
        if (!problem) break;
        await sleep(100);
      }
      if (problem) fail(problem);
    }

    phase('checks done');
    const health = await send(url, '/health');
    if (!health || health.status !== 200) fail(`/health after the run: ${health?.status}`);

    // Memory: the last quarter must not be far above the first.
    counts.maxRssMB = Math.round(Math.max(0, ...rss));
    if (rss.length >= 4) {
      const q = Math.max(1, Math.floor(rss.length / 4));
      const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      counts.firstQuarterRssMB = Math.round(avg(rss.slice(0, q)));
      counts.lastQuarterRssMB = Math.round(avg(rss.slice(-q)));
      if (avg(rss.slice(-q)) >= 1.5 * avg(rss.slice(0, q)) + 50) {
        fail(`RSS grew from ${counts.firstQuarterRssMB} MB (first quarter) to ${counts.lastQuarterRssMB} MB (last quarter)`);
      }
    } else fail(`only ${rss.length} RSS samples (run longer than 4 s)`);

    const code = await Promise.race([server.stop('SIGTERM'), sleep(20_000).then(() => 'timeout' as const)]);
    if (code !== 0) fail(`graceful shutdown: exit code ${String(code)}`);
    phase('server stopped');
  } finally {
    if (rssTimer) clearInterval(rssTimer);
    agent.destroy();
    const shufflerLeft = shufflerProc as ChildProcess | null;
    if (shufflerLeft && shufflerLeft.exitCode === null && shufflerLeft.signalCode === null) shufflerLeft.kill('SIGKILL');
    if (server) await server.stop('SIGKILL');
    await fsp.rm(work, { recursive: true, force: true });
  }
  return { counts, failures, rssSamplesMB: rss };
}

// ---------------------------------------------------------------------------------------------
// CLI

function argValue(args: string[], name: string, def: number): number {
  const i = args.indexOf(name);
  if (i === -1) return def;
  const n = Number(args[i + 1]);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} needs a positive number`);
  return n;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args[0] === '--shuffle') {
    process.stdout.write(`${JSON.stringify(await shuffleFiles(args[1], args[2], Number(args[3])))}\n`);
    return 0;
  }
  const seconds = argValue(args, '--seconds', 60);
  const uploaders = argValue(args, '--uploaders', 8);
  const readers = argValue(args, '--readers', 32);
  console.log(`soak: ${seconds}s, ${uploaders} uploaders, ${readers} readers, 1 file shuffler process`);
  const started = Date.now();
  const { counts, failures } = await runSoak({ seconds, uploaders, readers, log: (l) => console.log(l) });
  console.log(`soak finished in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  const rows: [string, string | number][] = [
    ['uploads ok (200)', counts.uploadsOk],
    ['  of which won a race', counts.racesResolved],
    ['identical re-uploads (200)', counts.uploadsIdentical],
    ['conflicts (409)', counts.uploads409],
    ['aborted uploads', counts.uploadsAborted],
    ['page reads', counts.pageReads],
    ['downloads verified (sha256)', counts.downloadsVerified],
    ['downloads of deleted files (404)', counts.downloadsGone],
    ['files copied in', counts.copies],
    ['files deleted', counts.deletes],
    ['acknowledged uploads checked', counts.ackedChecked],
    ['5xx responses', counts.status5xx],
    ['max RSS', `${counts.maxRssMB} MB`],
    ['RSS first/last quarter', `${counts.firstQuarterRssMB} / ${counts.lastQuarterRssMB} MB`],
  ];
  for (const [k, v] of rows) console.log(`  ${k.padEnd(34)} ${v}`);
  if (failures.length) {
    console.log(`FAILED: ${failures.length} invariant violation(s):`);
    for (const f of failures) console.log(`  - ${f}`);
    return 1;
  }
  console.log('OK: all invariants held');
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(2);
    },
  );
}
