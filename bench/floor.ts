// The cold start's floor in Node, a reference for its row (run as `node dist/bench/floor.js ROOT`):
// every file of ROOT read and hashed as a hashing worker does (open, fstat, read, close,
// sha256), and the bytes of its metadata obtained (a wheel's METADATA member inflated, an
// sdist gunzipped), by as many worker threads as cores, and nothing else: no metadata parse,
// no message per file, no catalog, no digest cache. Prints one JSON line: { ms, cpuMs, files,
// metadata } (ms counted from the module's start; the bench times the process as a whole).
// What pypi-lite does on top of this has to fit between this floor and the target.

import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

export interface FloorResult {
  ms: number;
  cpuMs: number;
  files: number;
  metadata: number;
}

async function main(root: string): Promise<void> {
  const t0 = performance.now();
  const entries = await fsp.readdir(root, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  const n = os.availableParallelism();
  const counts = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const w = new Worker(new URL('./floor-worker.js', import.meta.url), { workerData: files.filter((_, j) => j % n === i) });
      return new Promise<{ files: number; metadata: number }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
    }),
  );
  const cpu = process.cpuUsage();
  const out: FloorResult = {
    ms: performance.now() - t0,
    cpuMs: (cpu.user + cpu.system) / 1000,
    files: counts.reduce((s, c) => s + c.files, 0),
    metadata: counts.reduce((s, c) => s + c.metadata, 0),
  };
  console.log(JSON.stringify(out));
}

await main(process.argv[2] ?? '.');
