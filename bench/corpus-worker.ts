// Worker thread of the corpus generator: builds and writes the releases of every project i
// with i % workers === index, reporting progress to the parent.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { release } from './dists.js';

interface Job {
  root: string;
  projects: number;
  versions: number;
  index: number;
  workers: number;
}

const job = workerData as Job;
const CONCURRENCY = 16;

async function main(): Promise<void> {
  const todo: [number, number][] = [];
  for (let i = job.index; i < job.projects; i += job.workers) for (let j = 0; j < job.versions; j++) todo.push([i, j]);
  let next = 0;
  let files = 0;
  let bytes = 0;
  let reported = 0;
  const runner = async () => {
    while (next < todo.length) {
      const [i, j] = todo[next++];
      for (const d of await release(i, j)) {
        await fsp.writeFile(path.join(job.root, d.filename), d.data);
        files++;
        bytes += d.data.length;
      }
      if (files - reported >= 1000) {
        parentPort!.postMessage({ progress: files - reported });
        reported = files;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, runner));
  parentPort!.postMessage({ progress: files - reported, done: { files, bytes } });
}

main().catch((err: unknown) => {
  parentPort!.postMessage({ error: err instanceof Error ? err.stack ?? err.message : String(err) });
});
