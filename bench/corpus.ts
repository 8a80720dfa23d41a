// The benchmark corpus: <projects> x <versions> x (wheel + sdist) small but valid
// distributions plus one 100 MB wheel, generated once into the temp dir and reused by later
// runs (a marker file records a completed generation). Also the files the run adds itself:
// 1,000 new projects to copy in, and 100 MB upload bodies.

import { createHash, randomFillSync } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { wheel, wheelParts } from './dists.js';
import { crc32 } from './zip.js';

/** Bump when the generated files change, so that old corpora are regenerated. */
const FORMAT = 4;

export const BIG_NAME = 'big_file';
export const BIG_VERSION = '1.0';
/** Files the bench adds to the root (and removes again) all start with this. */
export const SCRATCH_PREFIX = 'zz_bench_';

export interface Corpus {
  dir: string;
  root: string;
  projects: number;
  versions: number;
  /** Distribution files in the root (including the big file). */
  files: number;
  bytes: number;
  bigFile: { relPath: string; size: number };
  /** How long generation took this run, or null when an existing corpus was reused. */
  generatedMs: number | null;
}

interface Marker {
  format: number;
  projects: number;
  versions: number;
  bigBytes: number;
  files: number;
  bytes: number;
  bigFile: string;
  bigSize: number;
}

export async function ensureCorpus(opts: { projects: number; versions: number; bigBytes: number; fresh: boolean; log: (msg: string) => void }): Promise<Corpus> {
  const dir = path.join(os.tmpdir(), `pypi-lite-bench-corpus-${opts.projects}x${opts.versions}`);
  const root = path.join(dir, 'root');
  const markerPath = path.join(dir, 'complete.json');
  if (!opts.fresh) {
    const marker = await fsp
      .readFile(markerPath, 'utf8')
      .then((t) => JSON.parse(t) as Marker)
      .catch(() => null);
    if (marker && marker.format === FORMAT && marker.bigBytes === opts.bigBytes) {
      const removed = await removeScratch(root);
      opts.log(`reusing corpus ${root} (${marker.files} files, ${mb(marker.bytes)} MB)${removed ? `, removed ${removed} files left by an earlier run` : ''}`);
      return { dir, root, projects: opts.projects, versions: opts.versions, files: marker.files, bytes: marker.bytes, bigFile: { relPath: marker.bigFile, size: marker.bigSize }, generatedMs: null };
    }
  }
  const t0 = performance.now();
  await fsp.rm(dir, { recursive: true, force: true });
  await fsp.mkdir(root, { recursive: true });
  const total = opts.projects * opts.versions * 2;
  opts.log(`generating corpus in ${root}: ${opts.projects} projects x ${opts.versions} versions x (wheel + sdist) = ${total} files + one ${mb(opts.bigBytes)} MB wheel`);

  const workers = Math.max(1, Math.min(os.availableParallelism(), 8));
  let done = 0;
  let lastLog = performance.now();
  const results = await Promise.all(
    Array.from({ length: workers }, (_, index) => {
      const w = new Worker(new URL('./corpus-worker.js', import.meta.url), {
        workerData: { root, projects: opts.projects, versions: opts.versions, index, workers },
      });
      return new Promise<{ files: number; bytes: number }>((resolve, reject) => {
        w.on('message', (m: { progress?: number; done?: { files: number; bytes: number }; error?: string }) => {
          if (m.error) reject(new Error(m.error));
          if (m.progress) {
            done += m.progress;
            if (performance.now() - lastLog > 5000) {
              lastLog = performance.now();
              opts.log(`  ${done} / ${total} files`);
            }
          }
          if (m.done) resolve(m.done);
        });
        w.on('error', reject);
        w.on('exit', (code) => (code !== 0 ? reject(new Error(`corpus worker exited with ${code}`)) : undefined));
      });
    }),
  );
  let files = results.reduce((n, r) => n + r.files, 0);
  let bytes = results.reduce((n, r) => n + r.bytes, 0);

  // The big file: a valid wheel holding one stored entry of random bytes.
  const payload = randomPayload(opts.bigBytes);
  const big = wheelParts(BIG_NAME, BIG_VERSION, { payload });
  const bigPath = path.join(root, big.filename);
  await writeParts(bigPath, big.parts);
  const bigSize = (await fsp.stat(bigPath)).size;
  files++;
  bytes += bigSize;

  const marker: Marker = { format: FORMAT, projects: opts.projects, versions: opts.versions, bigBytes: opts.bigBytes, files, bytes, bigFile: big.filename, bigSize };
  await fsp.writeFile(markerPath, JSON.stringify(marker));
  const generatedMs = performance.now() - t0;
  opts.log(`corpus generated in ${(generatedMs / 1000).toFixed(1)} s (${files} files, ${mb(bytes)} MB)`);
  return { dir, root, projects: opts.projects, versions: opts.versions, files, bytes, bigFile: { relPath: big.filename, size: bigSize }, generatedMs };
}

/** Remove what an interrupted run may have left in the root (new projects, uploads). */
async function removeScratch(root: string): Promise<number> {
  let removed = 0;
  for (const name of await fsp.readdir(root)) {
    if (name.startsWith(SCRATCH_PREFIX) || name.startsWith('.pypi-lite')) {
      await fsp.rm(path.join(root, name), { force: true, recursive: true });
      removed++;
    }
  }
  return removed;
}

export function randomPayload(size: number): { data: Buffer; crc: number; sha256: string } {
  const data = Buffer.allocUnsafe(size);
  for (let off = 0; off < size; off += 64 * 1024 * 1024) randomFillSync(data, off, Math.min(64 * 1024 * 1024, size - off));
  return { data, crc: crc32(data), sha256: createHash('sha256').update(data).digest('hex') };
}

export async function writeParts(file: string, parts: Buffer[]): Promise<void> {
  const out = createWriteStream(file);
  for (const p of parts) if (!out.write(p)) await new Promise<void>((r) => out.once('drain', () => r()));
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

/** `count` wheels of new projects in a staging directory beside the root. */
export async function stageNewFiles(corpus: Corpus, count: number, tag: string): Promise<{ dir: string; files: string[]; projects: string[] }> {
  const dir = path.join(corpus.dir, `staging-${tag}`);
  await fsp.rm(dir, { recursive: true, force: true });
  await fsp.mkdir(dir);
  const files: string[] = [];
  const projects: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${SCRATCH_PREFIX}new-${tag}-${String(i).padStart(5, '0')}`;
    const d = wheel(name, '1.0');
    await fsp.writeFile(path.join(dir, d.filename), d.data);
    files.push(d.filename);
    projects.push(name.replace(/[-_.]+/g, '-').toLowerCase());
  }
  return { dir, files, projects };
}

export function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(bytes >= 1e8 ? 0 : 1);
}
